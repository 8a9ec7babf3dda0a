//! The server functions' answers: JSON, read in the browser from text.
//!
//! server_fn's own `Json` reads an answer with `serde_json::from_slice`, while Leptos reads the
//! same types from text where a resource's value comes with the page (its serialiser uses
//! `serde_json::from_str`), and so does the live socket. Each reader is a type of its own, so
//! with both every model type a page reads was compiled twice into the browser's bundle. Read
//! from text everywhere, it is compiled once (51 KB less gzip for the whole app built as one
//! module; BENCHMARKS.md, "Each model type compiled once"). The bytes on the wire are the same
//! `application/json`.

use leptos::server_fn::codec::Post;
use leptos::server_fn::{Bytes, ContentType, Decodes, Encodes, Format, FormatType};
use serde::{de::DeserializeOwned, Serialize};

/// JSON written as server_fn's `JsonEncoding` writes it, read from text.
pub struct JsonText;

impl ContentType for JsonText {
    const CONTENT_TYPE: &'static str = "application/json";
}

impl FormatType for JsonText {
    const FORMAT_TYPE: Format = Format::Text;
}

impl<T: Serialize> Encodes<T> for JsonText {
    type Error = serde_json::Error;

    fn encode(output: &T) -> Result<Bytes, Self::Error> {
        serde_json::to_vec(output).map(Bytes::from)
    }
}

impl<T: DeserializeOwned> Decodes<T> for JsonText {
    type Error = serde_json::Error;

    fn decode(bytes: Bytes) -> Result<T, Self::Error> {
        let text = std::str::from_utf8(&bytes).map_err(serde::de::Error::custom)?;
        serde_json::from_str(text)
    }
}

/// Every server function's `output`: a POST answered with [`JsonText`].
pub type Answer = Post<JsonText>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_read_back_and_bad_text_is_an_error() {
        let bytes = <JsonText as Encodes<Vec<u32>>>::encode(&vec![1, 2]).unwrap();
        assert_eq!(&bytes[..], b"[1,2]");
        assert_eq!(<JsonText as Decodes<Vec<u32>>>::decode(bytes).unwrap(), vec![1, 2]);
        let not_utf8 = Bytes::from_static(b"[1,\xff]");
        assert!(<JsonText as Decodes<Vec<u32>>>::decode(not_utf8).is_err());
        assert!(<JsonText as Decodes<Vec<u32>>>::decode(Bytes::from_static(b"[1,")).is_err());
    }
}
