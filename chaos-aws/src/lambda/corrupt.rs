//! What a `corrupt` fault does to a Lambda handler's answer.
//!
//! Lambda's runtime sends a handler's answer as JSON, so what can be corrupted is what the
//! caller parses next:
//!
//! * an HTTP answer (API Gateway REST or HTTP API, ALB: an object with `statusCode` and a
//!   string `body`): the `body` text, as chaos-core's [`Corruption::apply_text`] defines it;
//!   status and headers stay (a client sees a 200 whose body it cannot trust). A base64 body
//!   (`isBase64Encoded`) is corrupted as text, so it may no longer decode.
//! * any other answer (a direct invoke, an event source): the answer's JSON text. `empty`
//!   answers `null` (what a handler that returns nothing sends); otherwise the corrupted text
//!   is sent as the JSON value it still is (a `flip` that changed a digit is a wrong number),
//!   or, when it is no longer JSON, as a JSON string holding it: the runtime cannot send
//!   invalid JSON, and a caller expecting its object fails to deserialize either way.

use chaos_core::corrupt::{CorruptMode, Corruption};
use serde_json::Value;

/// `answer`, corrupted.
pub(super) fn corrupt_answer(answer: Value, corruption: &Corruption) -> Value {
    if let Value::Object(mut object) = answer {
        if object.contains_key("statusCode")
            && let Some(Value::String(body)) = object.get_mut("body")
        {
            *body = corruption.apply_text(body);
            return Value::Object(object);
        }
        return corrupt_payload(&Value::Object(object), corruption);
    }
    corrupt_payload(&answer, corruption)
}

fn corrupt_payload(answer: &Value, corruption: &Corruption) -> Value {
    if corruption.mode == CorruptMode::Empty {
        return Value::Null;
    }
    let text = corruption.apply_text(&answer.to_string());
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn order() -> Value {
        json!({"orderId": 4242, "items": [{"sku": "A-1", "qty": 2}], "total": 19.98})
    }

    #[test]
    fn http_answers_keep_status_and_headers_and_lose_their_body() {
        let answer = json!({
            "statusCode": 200,
            "headers": {"content-type": "application/json"},
            "body": order().to_string(),
            "isBase64Encoded": false,
        });
        for seed in 0..50 {
            let corruption = Corruption::new(CorruptMode::JsonInvalid, seed);
            let corrupted = corrupt_answer(answer.clone(), &corruption);
            assert_eq!(corrupted["statusCode"], 200);
            assert_eq!(corrupted["headers"], answer["headers"]);
            let body = corrupted["body"].as_str().expect("a string body");
            assert!(serde_json::from_str::<Value>(body).is_err(), "{body}");
            assert_eq!(corrupted, corrupt_answer(answer.clone(), &corruption));
        }
        let empty = corrupt_answer(answer, &Corruption::new(CorruptMode::Empty, 1));
        assert_eq!(empty["body"], "");
    }

    #[test]
    fn other_answers_become_what_their_corrupted_text_reads_as() {
        assert_eq!(
            corrupt_answer(order(), &Corruption::new(CorruptMode::Empty, 1)),
            Value::Null
        );
        for seed in 0..100 {
            let truncated = corrupt_answer(order(), &Corruption::new(CorruptMode::Truncate, seed));
            // A strict prefix of an object's text is never JSON: sent as a string.
            let text = truncated.as_str().expect("no longer JSON: a string");
            assert!(order().to_string().starts_with(text));
            let invalid = corrupt_answer(order(), &Corruption::new(CorruptMode::JsonInvalid, seed));
            assert!(invalid.is_string());
        }
        // A flip that still parses is delivered as the (wrong) value it now is.
        let parsed = (0..200)
            .map(|seed| corrupt_answer(order(), &Corruption::new(CorruptMode::Flip, seed)))
            .filter(|value| value.is_object())
            .count();
        assert!(
            parsed > 0,
            "some flips land in digits or letters of strings"
        );
        assert!(
            (0..200).all(
                |seed| corrupt_answer(order(), &Corruption::new(CorruptMode::Flip, seed))
                    != order()
            ),
            "a flip always changes the answer"
        );
    }
}
