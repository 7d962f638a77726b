#!/usr/bin/env bash
# The asynchronous hop of the Kind lab, in LocalStack: the SQS queue `orders`, its
# dead-letter queue `orders-dlq`, and the event source mapping that invokes the fulfilment
# function with the queue's messages, set up as SQS → Lambda is in production:
#
#   - batches of up to 10 messages, gathered for up to 1 s;
#   - ReportBatchItemFailures: the function names the messages it could not handle and only
#     those return to the queue;
#   - a message received 5 times without success moves to orders-dlq (redrive policy);
#   - the queue's visibility timeout is six times the function's timeout (AWS's advice: a
#     message is not handed to a second invocation while the first may still run);
#   - retention 4 days on orders, 14 on orders-dlq (longer than the source, so a message
#     that waited in orders does not expire as soon as it is dead-lettered).
#
# Prints the queue URL of `orders` (last line). Idempotent: existing queues get these
# attributes, an existing mapping these settings. Run after
# `localstack/deploy-lambda.sh fulfilment`.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR/../scripts
# shellcheck source=../scripts/lib.sh
source "$(dirname "$0")/../scripts/lib.sh"

FUNCTION=fulfilment
BATCH_SIZE=10
BATCHING_WINDOW_SECONDS=1
MAX_RECEIVE_COUNT=5

function_timeout="$(awslocal lambda get-function --function-name "$FUNCTION" \
    --query Configuration.Timeout --output text)" ||
    die "there is no $FUNCTION function in LocalStack: run localstack/deploy-lambda.sh $FUNCTION first"
visibility_timeout=$((function_timeout * 6))

# Creates the queue $1 with the attributes $2 (a JSON object of strings), or gives an
# existing one those attributes (create-queue refuses a name that exists with other
# attributes); prints its URL.
ensure_queue() {
    local name="$1" attributes="$2" url
    if url="$(awslocal sqs get-queue-url --queue-name "$name" --query QueueUrl --output text 2>/dev/null)"; then
        awslocal sqs set-queue-attributes --queue-url "$url" --attributes "$attributes" >/dev/null
    else
        url="$(awslocal sqs create-queue --queue-name "$name" --attributes "$attributes" \
            --query QueueUrl --output text)"
    fi
    echo "$url"
}

queue_arn() {
    awslocal sqs get-queue-attributes --queue-url "$1" --attribute-names QueueArn \
        --query Attributes.QueueArn --output text
}

say "creating the queues $QUEUE_NAME and $DLQ_NAME (SQS in LocalStack)"
dlq_url="$(ensure_queue "$DLQ_NAME" '{"MessageRetentionPeriod": "1209600"}')"
dlq_arn="$(queue_arn "$dlq_url")"
# RedrivePolicy is itself JSON, carried as a string value: its quotes are escaped.
redrive="{\\\"deadLetterTargetArn\\\":\\\"$dlq_arn\\\",\\\"maxReceiveCount\\\":\\\"$MAX_RECEIVE_COUNT\\\"}"
queue_url="$(ensure_queue "$QUEUE_NAME" "{\"VisibilityTimeout\": \"$visibility_timeout\", \"MessageRetentionPeriod\": \"345600\", \"RedrivePolicy\": \"$redrive\"}")"
arn="$(queue_arn "$queue_url")"

mapping=(--batch-size "$BATCH_SIZE"
    --maximum-batching-window-in-seconds "$BATCHING_WINDOW_SECONDS"
    --function-response-types ReportBatchItemFailures)
uuid="$(awslocal lambda list-event-source-mappings --function-name "$FUNCTION" \
    --event-source-arn "$arn" --query 'EventSourceMappings[0].UUID' --output text)"
if [[ -z "$uuid" || "$uuid" == None ]]; then
    say "mapping $QUEUE_NAME to the $FUNCTION function"
    uuid="$(awslocal lambda create-event-source-mapping --function-name "$FUNCTION" \
        --event-source-arn "$arn" "${mapping[@]}" --query UUID --output text)"
else
    say "updating the mapping of $QUEUE_NAME to $FUNCTION ($uuid)"
    awslocal lambda update-event-source-mapping --uuid "$uuid" \
        --function-name "$FUNCTION" "${mapping[@]}" >/dev/null
fi
state=""
for _ in $(seq 1 30); do
    state="$(awslocal lambda get-event-source-mapping --uuid "$uuid" --query State --output text)"
    [[ "$state" == Enabled ]] && break
    sleep 1
done
[[ "$state" == Enabled ]] ||
    die "the event source mapping $uuid ($QUEUE_NAME → $FUNCTION) is $state, not Enabled, after 30 s (make logs SERVICE=localstack)"
echo "$queue_url"
