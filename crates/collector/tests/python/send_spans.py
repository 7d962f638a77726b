"""Sends spans with the official OpenTelemetry Python SDK and prints their span ids as JSON.

usage: send_spans.py grpc|http ENDPOINT COUNT [gzip|none]
"""
import json
import sys

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

protocol, endpoint, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
compression = sys.argv[4] if len(sys.argv) > 4 else "gzip"

if protocol == "grpc":
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from grpc import Compression

    exporter = OTLPSpanExporter(
        endpoint=endpoint,
        insecure=True,
        compression=Compression.Gzip if compression == "gzip" else Compression.NoCompression,
    )
else:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.exporter.otlp.proto.http import Compression

    exporter = OTLPSpanExporter(
        endpoint=endpoint,
        compression=Compression.Gzip if compression == "gzip" else Compression.NoCompression,
    )

provider = TracerProvider(resource=Resource.create({"service.name": f"python-{protocol}"}))
provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=256))
tracer = provider.get_tracer("otel-lab-test")

ids = []
with tracer.start_as_current_span("parent") as parent:
    ids.append(format(parent.get_span_context().span_id, "016x"))
    for i in range(count - 1):
        with tracer.start_as_current_span(f"child-{i}", attributes={"i": i}) as s:
            ids.append(format(s.get_span_context().span_id, "016x"))

ok = provider.force_flush(30000)
provider.shutdown()
if not ok:
    sys.exit("flush failed")
print(json.dumps(ids))
