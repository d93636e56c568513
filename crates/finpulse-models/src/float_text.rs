//! Model parameters in JSON as decimal text (`"0.30000000000000004"`), so a saved model loads
//! bit-for-bit: serde_json's default number parser may land one unit in the last place away,
//! and a moved split threshold would change predictions. Rust writes the shortest text that
//! reads back to the same `f64`, and reads it back correctly rounded.

use serde::{Deserialize, Deserializer, Serializer};

fn parse<E: serde::de::Error>(text: &str) -> Result<f64, E> {
    text.parse::<f64>().map_err(|_| E::custom(format!("'{text}' is not a number")))
}

/// One `f64`.
pub mod one {
    use super::*;

    /// Writes the value as text.
    pub fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(x)
    }

    /// Reads the value from text.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        parse(&String::deserialize(d)?)
    }
}

/// A list of `f64`.
pub mod many {
    use super::*;

    /// Writes the values as text.
    pub fn serialize<S: Serializer>(xs: &[f64], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(xs.iter().map(|x| x.to_string()))
    }

    /// Reads the values from text.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        Vec::<String>::deserialize(d)?.iter().map(|t| parse(t)).collect()
    }
}

#[cfg(test)]
mod tests {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Sample {
        #[serde(with = "super::one")]
        x: f64,
        #[serde(with = "super::many")]
        xs: Vec<f64>,
    }

    #[test]
    fn values_serde_json_would_round_off_load_exactly() {
        let sample = Sample { x: 26.615000000000002, xs: vec![0.1 + 0.2, 197.58466114294833, f64::MAX, -1e-300] };
        let json = serde_json::to_string(&sample).unwrap();
        assert_eq!(serde_json::from_str::<Sample>(&json).unwrap(), sample);
        assert!(serde_json::from_str::<Sample>(r#"{"x":"abc","xs":[]}"#).unwrap_err().to_string().contains("'abc' is not a number"));
    }
}
