//! Numbers as real devices send them: JSON numbers, or the same number as a string (old
//! OwnTracks apps, most face-terminal firmware). Shared by the adapters that read fields by hand.

use serde_json::{Map, Value};

use crate::native::DecodeError;
use crate::time::truncate;

/// `field` as a number: absent, `null` and `""` are `None`; `12`, `"12"` and `" 12.5 "` are
/// numbers; anything else is refused with the field named, `"NaN"`, `"inf"` and `"1e999"`
/// (which Rust's float parser would take) included: no field holds a number that is not finite.
pub(crate) fn optional_number(
    obj: &Map<String, Value>,
    field: &str,
) -> Result<Option<f64>, DecodeError> {
    let not_a_number = |v: &Value| {
        DecodeError::Json(format!(
            "{field} is not a number: {}",
            truncate(&v.to_string(), 40)
        ))
    };
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(v @ Value::String(s)) => match s.trim().parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(Some(n)),
            _ => Err(not_a_number(v)),
        },
        Some(other) => Err(not_a_number(other)),
    }
}

/// Like [`optional_number`], but the field must be there.
pub(crate) fn required_number(obj: &Map<String, Value>, field: &str) -> Result<f64, DecodeError> {
    optional_number(obj, field)?
        .ok_or_else(|| DecodeError::Json(format!("missing field `{field}`")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_numeric_strings_are_numbers() {
        let obj: Map<String, Value> =
            serde_json::from_str(r#"{"a":1.5,"b":" 2 ","c":"","d":null,"e":"x","f":true}"#)
                .unwrap();
        assert_eq!(optional_number(&obj, "a").unwrap(), Some(1.5));
        assert_eq!(optional_number(&obj, "b").unwrap(), Some(2.0));
        assert_eq!(optional_number(&obj, "c").unwrap(), None);
        assert_eq!(optional_number(&obj, "d").unwrap(), None);
        assert_eq!(optional_number(&obj, "missing").unwrap(), None);
        assert!(optional_number(&obj, "e")
            .unwrap_err()
            .to_string()
            .contains("e is not a number"));
        assert!(optional_number(&obj, "f").is_err());
        let odd: Map<String, Value> =
            serde_json::from_str(r#"{"n":"NaN","i":"inf","m":"-Infinity","h":"1e999"}"#).unwrap();
        for field in ["n", "i", "m", "h"] {
            assert!(
                optional_number(&odd, field).is_err(),
                "{field} is not a finite number"
            );
        }
        assert!(required_number(&obj, "c")
            .unwrap_err()
            .to_string()
            .contains("missing field `c`"));
    }
}
