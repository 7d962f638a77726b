//! Any bytes, as the body of an OTLP/protobuf request of any signal, compressed or not:
//! decoding must return an error or a batch, never panic, and a decoded batch must survive
//! re-encoding and splitting.
#![no_main]

use collector::otlp_codec::{self, Encoding};
use collector::pdata::Signal;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let signal = Signal::ALL[(selector % 3) as usize];
    let encoding = match selector / 3 % 3 {
        0 => None,
        1 => Some("gzip"),
        _ => Some("zstd"),
    };
    let Ok(raw) = otlp_codec::decompress(body, encoding, 1 << 20) else { return };
    if let Ok(mut batch) = otlp_codec::decode(signal, Encoding::Protobuf, &raw) {
        let again = otlp_codec::encode(&batch, Encoding::Protobuf);
        let back = otlp_codec::decode(signal, Encoding::Protobuf, &again).expect("re-encoded batch decodes");
        assert_eq!(back.item_count(), batch.item_count());
        let n = batch.item_count();
        let head = batch.split_front(1 + n / 2);
        assert_eq!(head.item_count() + batch.item_count(), n);
    }
});
