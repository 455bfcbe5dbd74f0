//! Face-terminal person sync ("mqtt/face" family, `../shared/protocols/face-terminals-mqtt-face.md`):
//! the commands the platform sends on `{base}/{terminal}` and the Acks terminals answer on
//! `{base}/{terminal}/Ack`, plus the presence facts the sync engine needs (address, firmware,
//! person count) that the history decoder ([`crate::face`]) does not keep.
//!
//! Firmware is lenient about types (codes and counts arrive as strings), so the decoders are
//! too; the error-code table ([`error_meaning`]) is the one vendor-specific table, kept here.

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::face::text;
use crate::native::{parse_object, DecodeError};
use crate::time::truncate;

/// Most persons one `EditPersonsNew` may carry.
pub const MAX_EDIT_BATCH: usize = 1000;
/// Most ids one `DeletePersons` may carry.
pub const MAX_DELETE_BATCH: usize = 200;
/// Longest `customId` a terminal stores.
pub const MAX_CUSTOM_ID_CHARS: usize = 48;
/// Longest person name a terminal stores.
pub const MAX_PERSON_NAME_CHARS: usize = 32;
/// Largest Ack accepted (a `QueryPerson` answer lists every id on the terminal).
pub const MAX_ACK_BYTES: usize = 4 * 1024 * 1024;

/// The topic the platform sends commands (and `Online-Ack`) to.
pub fn command_topic(base: &str, terminal: &str) -> String {
    format!("{base}/{terminal}")
}

/// One person as a terminal stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub custom_id: String,
    pub name: String,
    /// 0 allow-list, 1 block-list.
    pub person_type: u8,
    /// Validity window as `YYYY-MM-DD HH:mm:ss` in the terminal's local time (a temporary card).
    pub valid: Option<(String, String)>,
    /// Where the terminal downloads the photo.
    pub pic_uri: String,
}

impl Person {
    fn to_json(&self) -> Value {
        let mut p = json!({
            "customId": self.custom_id,
            "name": self.name,
            "personType": self.person_type,
            "picURI": self.pic_uri,
            "tempCardType": 0,
        });
        if let Some((begin, end)) = &self.valid {
            p["tempCardType"] = json!(1);
            p["cardValidBegin"] = json!(begin);
            p["cardValidEnd"] = json!(end);
        }
        p
    }
}

/// `EditPersonsNew`: a batch upsert of 1 to [`MAX_EDIT_BATCH`] persons.
pub fn edit_persons(message_id: &str, persons: &[Person]) -> Vec<u8> {
    debug_assert!(!persons.is_empty() && persons.len() <= MAX_EDIT_BATCH);
    let info: Vec<Value> = persons.iter().map(Person::to_json).collect();
    serde_json::to_vec(&json!({
        "messageId": message_id,
        "operator": "EditPersonsNew",
        "DataBegin": "BeginFlag",
        "PersonNum": persons.len(),
        "info": info,
        "DataEnd": "EndFlag",
    }))
    .expect("a JSON value serialises")
}

/// `DeletePersons`: removes up to [`MAX_DELETE_BATCH`] persons by `customId`.
pub fn delete_persons(message_id: &str, custom_ids: &[String]) -> Vec<u8> {
    debug_assert!(custom_ids.len() <= MAX_DELETE_BATCH);
    serde_json::to_vec(&json!({
        "messageId": message_id,
        "operator": "DeletePersons",
        "DataBegin": "BeginFlag",
        "PersonNum": custom_ids.len(),
        "info": { "customId": custom_ids },
        "DataEnd": "EndFlag",
    }))
    .expect("a JSON value serialises")
}

/// `QueryPerson`: asks for every `customId` on the terminal.
pub fn query_person(message_id: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "messageId": message_id,
        "operator": "QueryPerson",
        "info": {},
    }))
    .expect("a JSON value serialises")
}

/// `QueryProgress`: whether a batch is running (asked before the first batch after a restart
/// or a silence, since a terminal refuses a batch while one runs).
pub fn query_progress(message_id: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "messageId": message_id,
        "operator": "QueryProgress",
        "info": {},
    }))
    .expect("a JSON value serialises")
}

/// `Online-Ack`: without it a terminal keeps re-sending `Online`. It echoes the Online's
/// `messageId` when it had one, as every reply does by the protocol notes (their own Online-Ack
/// example carries none, so none is sent for an Online without one).
pub fn online_ack(terminal: &str, message_id: Option<&str>) -> Vec<u8> {
    let mut ack = json!({
        "operator": "Online-Ack",
        "info": { "facesluiceId": terminal, "result": "ok" },
    });
    if let Some(id) = message_id {
        ack["messageId"] = json!(id);
    }
    serde_json::to_vec(&ack).expect("a JSON value serialises")
}

/// One person a terminal refused, with the terminal's error code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PersonError {
    pub custom_id: String,
    pub errcode: u32,
}

/// What an Ack reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckBody {
    /// `EditPersonsNew-Ack` (or `EditPerson-Ack`).
    Edit {
        ok: Vec<String>,
        failed: Vec<PersonError>,
    },
    /// `DeletePersons-Ack`: the ids removed and the ids not removed (unknown ids come back as
    /// failures; their error codes, where the firmware sends any, mean nothing more).
    Delete {
        ok: Vec<String>,
        failed: Vec<String>,
    },
    /// `QueryPerson-Ack`: every `customId` on the terminal.
    Query { custom_ids: Vec<String> },
    /// `QueryProgress-Ack`: 0 idle, 1 adding, 2 modifying, 3 both.
    Progress { status: u32 },
    /// Any other operator's Ack: correlated by id, body not interpreted.
    Other,
}

/// An Ack from a terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub terminal: String,
    pub message_id: String,
    /// The operator without its `-Ack` suffix.
    pub operator: String,
    /// The request-level code: 200 is success; 410 "a batch is already running", 417 "person
    /// count does not match"; `None` when the firmware sent none.
    pub code: Option<u32>,
    /// `info.detail`, the terminal's reason in words.
    pub detail: Option<String>,
    /// `info.result` was "fail" with no result per person: the request as a whole was refused,
    /// whatever `code` says (some firmware sends no code at all).
    pub refused: bool,
    pub body: AckBody,
}

impl Ack {
    /// Whether the request as a whole was carried out (per-person results may still fail).
    pub fn accepted(&self) -> bool {
        self.code.is_none_or(|c| c == 200) && !self.refused
    }
}

/// The terminal a per-terminal topic (`{base}/{id}/{leaf}`) names, if it is that leaf.
pub fn terminal_of<'t>(base: &str, topic: &'t str, leaf: &str) -> Option<&'t str> {
    let rest = topic.strip_prefix(base)?.strip_prefix('/')?;
    let (id, l) = rest.split_once('/')?;
    (l == leaf && !id.is_empty()).then_some(id)
}

/// Decodes an Ack received on `{base}/{terminal}/Ack`.
pub fn decode_ack(base: &str, topic: &str, payload: &[u8]) -> Result<Ack, DecodeError> {
    let terminal = terminal_of(base, topic, "Ack").ok_or_else(|| DecodeError::UnknownTopic {
        topic: truncate(topic, 200),
    })?;
    let msg = parse_object(payload, MAX_ACK_BYTES)?;
    let message_id = text(&msg, "messageId")
        .ok_or_else(|| DecodeError::Json("missing field `messageId`".into()))?;
    let operator = text(&msg, "operator")
        .ok_or_else(|| DecodeError::Json("missing field `operator`".into()))?;
    let operator = operator
        .strip_suffix("-Ack")
        .ok_or_else(|| {
            DecodeError::Json(format!(
                "operator {:?} is not an Ack",
                truncate(&operator, 32)
            ))
        })?
        .to_owned();
    let code = match msg.get("code") {
        None | Some(Value::Null) => None,
        Some(v) => Some(number(v).ok_or_else(|| {
            DecodeError::Json(format!(
                "`code` is not a number: {}",
                truncate(&v.to_string(), 32)
            ))
        })?),
    };
    let empty = Map::new();
    let info = match msg.get("info") {
        Some(Value::Object(info)) => info,
        None | Some(Value::Null) => &empty,
        Some(_) => return Err(DecodeError::Json("`info` is not an object".into())),
    };
    if let Some(id) = text(info, "facesluiceId") {
        if id != terminal {
            return Err(DecodeError::Json(format!(
                "topic names terminal {:?} but info.facesluiceId is {:?}",
                truncate(terminal, 64),
                truncate(&id, 64)
            )));
        }
    }
    let body = match operator.as_str() {
        "EditPersonsNew" | "EditPerson" => AckBody::Edit {
            ok: id_list(info, "AddSucInfo")?,
            failed: error_list(info, "AddErrInfo")?,
        },
        "DeletePersons" | "DelPerson" => AckBody::Delete {
            ok: id_list(info, "DelSucInfo")?,
            failed: id_list(info, "DelErrInfo")?,
        },
        "QueryPerson" => AckBody::Query {
            custom_ids: query_ids(info)?,
        },
        "QueryProgress" => AckBody::Progress {
            status: info
                .get("Status")
                .or_else(|| info.get("status"))
                .and_then(number)
                .ok_or_else(|| DecodeError::Json("missing number `info.Status`".into()))?,
        },
        _ => AckBody::Other,
    };
    // "fail" beside per-person lists is what some firmware says when any one person failed:
    // the lists tell who. Without them nobody was stored.
    let per_person = match &body {
        AckBody::Edit { ok, failed } => !ok.is_empty() || !failed.is_empty(),
        AckBody::Delete { ok, failed } => !ok.is_empty() || !failed.is_empty(),
        _ => false,
    };
    let refused =
        !per_person && text(info, "result").is_some_and(|r| r.trim().eq_ignore_ascii_case("fail"));
    Ok(Ack {
        terminal: terminal.to_owned(),
        message_id,
        operator,
        code,
        detail: text(info, "detail").filter(|d| !d.is_empty()),
        refused,
        body,
    })
}

/// Presence as the sync engine sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Presence {
    Online {
        terminal: String,
        name: Option<String>,
        ip: Option<String>,
        firmware: Option<String>,
        /// The Online's `messageId`, echoed in the Online-Ack.
        message_id: Option<String>,
    },
    Offline {
        terminal: String,
    },
    HeartBeat {
        terminal: String,
        person_count: Option<u32>,
    },
}

impl Presence {
    pub fn terminal(&self) -> &str {
        match self {
            Presence::Online { terminal, .. }
            | Presence::Offline { terminal }
            | Presence::HeartBeat { terminal, .. } => terminal,
        }
    }
}

/// Decodes `{base}/basic` (`Online`, `Offline`) and `{base}/heartbeat` (`HeartBeat`).
pub fn decode_presence(base: &str, topic: &str, payload: &[u8]) -> Result<Presence, DecodeError> {
    let leaf = topic
        .strip_prefix(base)
        .and_then(|r| r.strip_prefix('/'))
        .filter(|l| *l == "basic" || *l == "heartbeat")
        .ok_or_else(|| DecodeError::UnknownTopic {
            topic: truncate(topic, 200),
        })?;
    let msg = parse_object(payload, crate::MAX_PAYLOAD_BYTES)?;
    let operator = text(&msg, "operator")
        .ok_or_else(|| DecodeError::Json("missing field `operator`".into()))?;
    let empty = Map::new();
    let info = match msg.get("info") {
        Some(Value::Object(info)) => info,
        _ => &empty,
    };
    let terminal = text(info, "facesluiceId")
        .filter(|t| !t.is_empty() && t.len() <= 128 && !t.contains(['/', '+', '#']))
        .ok_or_else(|| DecodeError::Json("missing or unusable `info.facesluiceId`".into()))?;
    let short = |field: &str| {
        text(info, field)
            .filter(|v| !v.is_empty())
            .map(|v| truncate(&v, 64))
    };
    match (leaf, operator.as_str()) {
        ("basic", "Online") => Ok(Presence::Online {
            message_id: text(&msg, "messageId")
                .filter(|m| !m.is_empty())
                .map(|m| truncate(&m, 128)),
            name: short("facesname"),
            ip: short("ip"),
            firmware: short("version")
                .or_else(|| short("firmware"))
                .or_else(|| short("softwareVersion")),
            terminal,
        }),
        ("basic", "Offline") => Ok(Presence::Offline { terminal }),
        ("heartbeat", "HeartBeat") => Ok(Presence::HeartBeat {
            person_count: ["PersonNum", "personNum", "personCount"]
                .iter()
                .find_map(|f| info.get(*f).and_then(number)),
            terminal,
        }),
        (_, op) => Err(DecodeError::Unsupported(format!(
            "operator {:?} is not expected on this topic",
            truncate(op, 32)
        ))),
    }
}

/// The code given to a person refused with no `errcode` (or one that is not a number).
pub const NO_ERROR_CODE: u32 = 0;

/// What a terminal's error code means (one firmware family's table; others differ).
pub fn error_meaning(code: u32) -> &'static str {
    match code {
        NO_ERROR_CODE => "refused without an error code",
        200 => "ok",
        410 => "a batch is already running on the terminal",
        417 => "person count does not match the list",
        461 => "missing customId",
        463 => "missing photo URL",
        464 => "photo host name could not be resolved",
        465 => "photo download failed or timed out",
        466 => "photo empty or unreadable",
        467 => "photo too large (over 1 MB or 1080p)",
        468 => "no face found in the photo",
        474 => "terminal storage full",
        478 => "face too similar to another person on the terminal",
        _ => "unknown error code",
    }
}

/// Whether a per-person failure may pass by itself (worth retrying with the same data).
pub fn is_transient(code: u32) -> bool {
    matches!(code, 410 | 464 | 465)
}

fn number(v: &Value) -> Option<u32> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn array<'v>(info: &'v Map<String, Value>, field: &str) -> Result<&'v [Value], DecodeError> {
    match info.get(field) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(DecodeError::Json(format!("`info.{field}` is not a list"))),
    }
}

/// `[{customId}]` (some firmware sends bare strings, or numbers).
fn id_list(info: &Map<String, Value>, field: &str) -> Result<Vec<String>, DecodeError> {
    array(info, field)?
        .iter()
        .map(|item| match item {
            Value::Object(o) => text(o, "customId"),
            Value::String(s) => Some(s.clone()),
            // Ids we sent as text, echoed as numbers by some firmware.
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .map(|id| {
            id.ok_or_else(|| {
                DecodeError::Json(format!("`info.{field}` has an entry without customId"))
            })
        })
        .collect()
}

/// `[{customId, errcode}]`. An entry without a readable `errcode` (or a bare id, as
/// [`id_list`] reads them) is still a refusal of that person: it gets [`NO_ERROR_CODE`] rather
/// than costing the whole Ack (whose successes would then go unconfirmed until the batch was
/// sent again).
fn error_list(info: &Map<String, Value>, field: &str) -> Result<Vec<PersonError>, DecodeError> {
    let codes = array(info, field)?.iter().map(|item| {
        item.as_object()
            .and_then(|o| o.get("errcode"))
            .and_then(number)
            .unwrap_or(NO_ERROR_CODE)
    });
    Ok(id_list(info, field)?
        .into_iter()
        .zip(codes)
        .map(|(custom_id, errcode)| PersonError { custom_id, errcode })
        .collect())
}

/// `QueryPerson` answers with every id as one comma-separated string (`info.customId`); a list
/// is accepted too, of ids (strings or numbers) or of `{customId}` objects. A person enrolled
/// on the terminal's own screen has no customId: skipped, as an empty place in the string is.
/// Any other entry refuses the answer: read as "the terminal holds nobody", it made the sync
/// forget everyone it had placed there, and a leaver was never removed.
fn query_ids(info: &Map<String, Value>) -> Result<Vec<String>, DecodeError> {
    let (field, value) = match (info.get("customId"), info.get("customIds")) {
        (Some(v), _) if !v.is_null() => ("customId", v),
        (_, Some(v)) => ("customIds", v),
        (Some(v), None) => ("customId", v),
        (None, None) => return Ok(Vec::new()),
    };
    let ids = |items: Vec<Option<String>>| {
        items
            .into_iter()
            .flatten()
            .map(|id| id.trim().to_owned())
            .filter(|id| !id.is_empty())
            .collect()
    };
    match value {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(ids(s.split(',').map(|id| Some(id.to_owned())).collect())),
        Value::Array(items) => {
            let read: Result<Vec<Option<String>>, DecodeError> = items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(Some(s.clone())),
                    Value::Number(n) => Ok(Some(n.to_string())),
                    // Enrolled on the terminal's own screen: not ours.
                    Value::Object(o) if !o.contains_key("customId") => Ok(None),
                    Value::Object(o) => match text(o, "customId") {
                        Some(id) => Ok(Some(id)),
                        None if o["customId"].is_null() => Ok(None),
                        None => Err(DecodeError::Json(format!(
                            "`info.{field}` has a customId that is not text: {}",
                            o["customId"]
                        ))),
                    },
                    other => Err(DecodeError::Json(format!(
                        "`info.{field}` has an entry that is not an id: {other}"
                    ))),
                })
                .collect();
            Ok(ids(read?))
        }
        other => Err(DecodeError::Json(format!(
            "`info.{field}` is not a list of ids: {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_carries_its_count_and_flags_and_validity_as_a_temporary_card() {
        let persons = vec![
            Person {
                custom_id: "E1".into(),
                name: "Ann".into(),
                person_type: 0,
                valid: None,
                pic_uri: "http://h/p/x".into(),
            },
            Person {
                custom_id: "E2".into(),
                name: "Bob".into(),
                person_type: 1,
                valid: Some(("2026-01-01 00:00:00".into(), "2026-12-31 23:59:59".into())),
                pic_uri: "http://h/p/y".into(),
            },
        ];
        let v: Value = serde_json::from_slice(&edit_persons("m1", &persons)).unwrap();
        assert_eq!(v["operator"], "EditPersonsNew");
        assert_eq!(v["PersonNum"], 2);
        assert_eq!(v["DataBegin"], "BeginFlag");
        assert_eq!(v["DataEnd"], "EndFlag");
        assert_eq!(v["info"][0]["tempCardType"], 0);
        assert_eq!(v["info"][1]["tempCardType"], 1);
        assert_eq!(v["info"][1]["cardValidEnd"], "2026-12-31 23:59:59");
        assert_eq!(v["info"][1]["personType"], 1);
        let d: Value = serde_json::from_slice(&delete_persons("m2", &["E1".into()])).unwrap();
        assert_eq!(d["info"]["customId"][0], "E1");
        assert_eq!(d["PersonNum"], 1);
    }

    #[test]
    fn acks_with_string_numbers_are_read() {
        let ack = decode_ack(
            "mqtt/face",
            "mqtt/face/T1/Ack",
            br#"{"messageId":"m1","operator":"EditPersonsNew-Ack","code":"200","info":{"facesluiceId":"T1","AddErrNum":"1","AddSucNum":"1","AddSucInfo":[{"customId":"E1"}],"AddErrInfo":[{"customId":"E2","errcode":"468"}],"result":"ok"}}"#,
        )
        .unwrap();
        assert_eq!(ack.terminal, "T1");
        assert_eq!(ack.operator, "EditPersonsNew");
        assert!(ack.accepted());
        assert_eq!(
            ack.body,
            AckBody::Edit {
                ok: vec!["E1".into()],
                failed: vec![PersonError {
                    custom_id: "E2".into(),
                    errcode: 468
                }]
            }
        );
        let busy = decode_ack(
            "mqtt/face",
            "mqtt/face/T1/Ack",
            br#"{"messageId":"m2","operator":"EditPersonsNew-Ack","code":"410","info":{"result":"fail","detail":"busy"}}"#,
        )
        .unwrap();
        assert_eq!(busy.code, Some(410));
        assert!(!busy.accepted());
        assert_eq!(busy.detail.as_deref(), Some("busy"));
        // "fail" with no code and nobody listed: refused as a whole.
        let failed = decode_ack(
            "mqtt/face",
            "mqtt/face/T1/Ack",
            br#"{"messageId":"m5","operator":"EditPersonsNew-Ack","info":{"result":"fail","detail":"busy"}}"#,
        )
        .unwrap();
        assert!(!failed.accepted());
        // "fail" beside per-person lists (one person failed): the lists say who.
        let partly = decode_ack(
            "mqtt/face",
            "mqtt/face/T1/Ack",
            br#"{"messageId":"m6","operator":"EditPersonsNew-Ack","code":"200","info":{"AddSucInfo":[{"customId":"E1"}],"AddErrInfo":[{"customId":"E2","errcode":"468"}],"result":"fail"}}"#,
        )
        .unwrap();
        assert!(partly.accepted());
        let q = decode_ack(
            "mqtt/face",
            "mqtt/face/T1/Ack",
            br#"{"messageId":"m3","operator":"QueryPerson-Ack","code":200,"info":{"customId":"E1, E2,,E3"}}"#,
        )
        .unwrap();
        let p = decode_ack(
            "mqtt/face",
            "mqtt/face/T1/Ack",
            br#"{"messageId":"m4","operator":"QueryProgress-Ack","code":"200","info":{"Status":"1"}}"#,
        )
        .unwrap();
        assert_eq!(p.body, AckBody::Progress { status: 1 });
        assert_eq!(
            q.body,
            AckBody::Query {
                custom_ids: vec!["E1".into(), "E2".into(), "E3".into()]
            }
        );
    }

    #[test]
    fn a_person_list_is_read_whatever_its_shape_and_refused_when_it_cannot_be() {
        let query = |info: &str| {
            decode_ack(
                "mqtt/face",
                "mqtt/face/T1/Ack",
                format!(
                    r#"{{"messageId":"q","operator":"QueryPerson-Ack","code":"200","info":{info}}}"#
                )
                .as_bytes(),
            )
            .map(|a| a.body)
        };
        let ids = |list: &[&str]| AckBody::Query {
            custom_ids: list.iter().map(|s| s.to_string()).collect(),
        };
        // Someone enrolled on the terminal's own screen has no customId; ids may be numbers.
        assert_eq!(
            query(
                r#"{"customId":[{"customId":"E1"},{"personId":"7"},{"customId":null},1002," E3 "]}"#
            )
            .unwrap(),
            ids(&["E1", "1002", "E3"])
        );
        assert_eq!(
            query(r#"{"customIds":["E1","E2"]}"#).unwrap(),
            ids(&["E1", "E2"])
        );
        assert_eq!(query(r#"{"customId":""}"#).unwrap(), ids(&[]));
        // What cannot be read is refused, not taken as "the terminal holds nobody".
        for info in [
            r#"{"customId":[{"customId":"E1"},true]}"#,
            r#"{"customId":[{"customId":["E1"]}]}"#,
            r#"{"customId":{"E1":1}}"#,
            r#"{"customIds":[["E1"]]}"#,
        ] {
            let err = query(info).unwrap_err().to_string();
            assert!(err.contains("info.customId"), "{info}: {err}");
        }
    }

    #[test]
    fn a_refusal_without_an_error_code_costs_only_that_person() {
        // A delete's failures are ids only, whatever the firmware adds to them.
        let del = decode_ack(
            "mqtt/face",
            "mqtt/face/T1/Ack",
            br#"{"messageId":"d1","operator":"DeletePersons-Ack","code":"200","info":{"DelSucInfo":[{"customId":"E1"},1002],"DelErrInfo":[{"customId":"E2"},{"customId":"E3","errcode":"404"},"E4"]}}"#,
        )
        .unwrap();
        assert_eq!(
            del.body,
            AckBody::Delete {
                // An id we sent as text may come back a number.
                ok: vec!["E1".into(), "1002".into()],
                failed: vec!["E2".into(), "E3".into(), "E4".into()]
            }
        );
        // An add refused with no code, or a code that is no number, is still that person's
        // refusal, and the rest of the Ack stands.
        let add = decode_ack(
            "mqtt/face",
            "mqtt/face/T1/Ack",
            br#"{"messageId":"a1","operator":"EditPersonsNew-Ack","code":"200","info":{"AddSucInfo":[{"customId":"E1"}],"AddErrInfo":[{"customId":"E2"},{"customId":"E3","errcode":"n/a"},"E4"]}}"#,
        )
        .unwrap();
        let refused = |id: &str| PersonError {
            custom_id: id.into(),
            errcode: NO_ERROR_CODE,
        };
        assert_eq!(
            add.body,
            AckBody::Edit {
                ok: vec!["E1".into()],
                failed: vec![refused("E2"), refused("E3"), refused("E4")]
            }
        );
        assert_eq!(
            error_meaning(NO_ERROR_CODE),
            "refused without an error code"
        );
        assert!(!is_transient(NO_ERROR_CODE));
    }

    #[test]
    fn bad_acks_are_refused_with_a_reason() {
        let bad = |topic: &str, payload: &str| {
            decode_ack("mqtt/face", topic, payload.as_bytes())
                .unwrap_err()
                .to_string()
        };
        assert!(bad("mqtt/face/T1/Rec", "{}").contains("topic"));
        assert!(bad("mqtt/face/T1/Ack", r#"{"operator":"X-Ack"}"#).contains("messageId"));
        assert!(
            bad("mqtt/face/T1/Ack", r#"{"messageId":"1","operator":"X"}"#).contains("not an Ack")
        );
        assert!(bad(
            "mqtt/face/T1/Ack",
            r#"{"messageId":"1","operator":"X-Ack","code":"abc"}"#
        )
        .contains("code"));
        assert!(bad(
            "mqtt/face/T1/Ack",
            r#"{"messageId":"1","operator":"X-Ack","info":{"facesluiceId":"T2"}}"#
        )
        .contains("T2"));
        assert!(bad(
            "mqtt/face/T1/Ack",
            r#"{"messageId":"1","operator":"EditPersonsNew-Ack","info":{"AddErrInfo":[{"errcode":"468"}]}}"#
        )
        .contains("without customId"));
    }

    #[test]
    fn presence_carries_address_firmware_and_count() {
        let on = decode_presence(
            "mqtt/face",
            "mqtt/face/basic",
            br#"{"messageId":"on-7","operator":"Online","info":{"facesluiceId":"T1","ip":"10.0.0.5","facesname":"Gate","version":"v2.1","time":"2026-11-23 08:00:00"}}"#,
        )
        .unwrap();
        assert_eq!(
            on,
            Presence::Online {
                terminal: "T1".into(),
                name: Some("Gate".into()),
                ip: Some("10.0.0.5".into()),
                firmware: Some("v2.1".into()),
                message_id: Some("on-7".into()),
            }
        );
        // The answer echoes it, as every reply does; an Online without one gets none.
        let ack: Value = serde_json::from_slice(&online_ack("T1", Some("on-7"))).unwrap();
        assert_eq!(ack["messageId"], "on-7");
        assert_eq!(ack["info"]["facesluiceId"], "T1");
        let bare: Value = serde_json::from_slice(&online_ack("T1", None)).unwrap();
        assert!(bare.get("messageId").is_none());
        let hb = decode_presence(
            "mqtt/face",
            "mqtt/face/heartbeat",
            br#"{"operator":"HeartBeat","info":{"facesluiceId":"T1","PersonNum":"42"}}"#,
        )
        .unwrap();
        assert_eq!(
            hb,
            Presence::HeartBeat {
                terminal: "T1".into(),
                person_count: Some(42)
            }
        );
        assert!(decode_presence(
            "mqtt/face",
            "mqtt/face/basic",
            br#"{"operator":"Online","info":{"facesluiceId":"a/b"}}"#
        )
        .is_err());
        assert_eq!(
            terminal_of("mqtt/face", "mqtt/face/T1/Ack", "Ack"),
            Some("T1")
        );
    }
}
