//! Any bytes as an OTLP/JSON request body: an error or a batch, never a panic; a decoded
//! batch encodes back to JSON that decodes to the same number of items.
#![no_main]

use collector::otlp_codec::{self, Encoding};
use collector::pdata::Signal;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let signal = Signal::ALL[(selector % 3) as usize];
    if let Ok(batch) = otlp_codec::decode(signal, Encoding::Json, body) {
        let json = otlp_codec::encode(&batch, Encoding::Json);
        let back = otlp_codec::decode(signal, Encoding::Json, &json).expect("our own JSON decodes");
        assert_eq!(back.item_count(), batch.item_count());
    }
});
