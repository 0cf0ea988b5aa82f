//! `GET /openapi.json`: the OpenAPI 3.1 document, built with utoipa's builders at start.
//!
//! Every business path `POST /v1/{msg_type}` of [`ykt_tsm::api::MESSAGES`] takes an envelope
//! whose `body` is that message's body schema and answers an envelope whose `body` is the
//! response's; the refusals are listed by HTTP status with their result codes. The admin paths
//! carry the bearer security scheme `admin_token`; the registry's (`/admin/v1/issuers`,
//! `…/stock`, `…/se-profiles`, `…/ses/{seid}/profile`, `…/keys`, `…/money-flows`, `…/flows/{id}/abandon`,
//! [`super::admin_write`]) the scheme `operator_token`, with their plain JSON bodies and refusals (`Refused`). The
//! inter-platform messages of [`ykt_tsm::api::PLATFORM_MESSAGES`] are listed under the tag
//! `platform`: the same `POST /v1/{msg_type}` of envelopes, which the SEI-TSM serves to its SP
//! platform (`crate::platform::SeiPlatform`), not to wallets.
//!
//! The body schemas are written out here from `ykt_tsm::api` (whose types derive no schema);
//! the test suite checks their member names against the types' JSON.

use utoipa::ToSchema;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{
    AdditionalProperties, AllOfBuilder, ArrayBuilder, ObjectBuilder, Ref, Schema, SchemaType, Type,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, RefOr,
    Required, ResponseBuilder,
};
use ykt_envelope::Code;
use ykt_tsm::api::{self, MESSAGES, PLATFORM_MESSAGES};

use super::admin_write::{
    AbandonReq, IssuerDto, Refused, SeProfileDto, SeProfileSet, SetProfile, StockDto,
};
use super::backend::{CardInstanceView, ChainView, FlowView, SeView};
use crate::engine::{Abandoned, KeyVersionView, LoadVerdict, StuckMoney};

/// The body schema's name of each inter-platform request type (tsm-gp.md §2, §6).
pub fn platform_body_schema(msg_type: &str) -> Option<&'static str> {
    Some(match msg_type {
        t if t == api::ISD_CHANNEL_INFO.request => "ISDChannelInfoReq",
        t if t == api::ISD_CHANNEL_OP.request => "ISDChannelOpReq",
        t if t == api::ACQUIRE_TOKEN.request => "AcquireTokenReq",
        t if t == api::VERIFY_RECEIPT.request => "ReceiptVerifyReq",
        t if t == api::KEY_QUERY.request
            || t == api::CREATE_SSD.request
            || t == api::DELETE_SSD.request =>
        {
            "SsdKeyReq"
        }
        t if t == api::SSD_FIRST_KEYS.request => "SSDFirstKeysReq",
        t if t == api::SSD_KEY_HANDOVER.request => "SSDKeyHandoverReq",
        _ => return None,
    })
}

/// The body schema's name of each request type.
pub fn request_body_schema(msg_type: &str) -> Option<&'static str> {
    Some(match msg_type {
        t if t == api::ENROL.request => "EnrolReq",
        t if t == api::OPEN_CARD.request => "OpenCardReq",
        t if t == api::TOPUP.request
            || t == api::ORDER_QUERY.request
            || t == api::TEST_PAY.request =>
        {
            "OrderReq"
        }
        t if t == api::DELETE_CARD.request
            || t == api::TRANSFER_OUT.request
            || t == api::LOCK.request
            || t == api::UNLOCK.request
            || t == api::CARD_QUERY.request =>
        {
            "CardReq"
        }
        t if t == api::REFUND.request => "RefundReq",
        t if t == api::TRANSFER_IN.request => "TransferInReq",
        t if t == api::APP_QUERY.request => "AppQueryReq",
        t if t == api::APDU_RESULT.request => "ApduResultReq",
        t if t == api::TOPUP_ORDER.request => "TopupOrderReq",
        t if t == api::RESUME.request
            || t == api::FLOW_QUERY.request
            || t == api::CARDS_QUERY.request =>
        {
            "Empty"
        }
        _ => return None,
    })
}

/// A member's JSON shape.
#[derive(Clone, Copy)]
enum F {
    /// A string.
    Str(&'static str),
    /// Hex bytes.
    Hex(&'static str),
    /// An integer.
    Int(&'static str),
    /// A boolean.
    Bool(&'static str),
    /// A string or `null`.
    OptStr(&'static str),
    /// An integer, optional.
    OptInt(&'static str),
    /// A JSON value of the type's own shape (an enum: a string or a one-member object).
    Any(&'static str),
    /// Another schema.
    Ref(&'static str, &'static str),
    /// Another schema or `null`.
    OptRef(&'static str, &'static str),
    /// An array of strings (hex).
    HexArray(&'static str),
    /// An array of another schema.
    Array(&'static str, &'static str),
    /// An object not described further.
    AnyObject(&'static str),
}

/// The body schemas: (name, members; each required unless optional).
const BODIES: &[(&str, &[(&str, F)])] = &[
    (
        "EnrolReq",
        &[
            (
                "device_pub",
                F::Hex("The device's SM2 public key, SEC1 uncompressed"),
            ),
            ("device_model", F::Str("The device model")),
        ],
    ),
    (
        "EnrolResp",
        &[
            (
                "device_id",
                F::Str("The device id: the sender_id from now on"),
            ),
            ("tsm_id", F::Str("The TSM's id")),
            ("tsm_pub", F::Hex("The TSM's SM2 public key, SEC1")),
        ],
    ),
    (
        "OpenCardReq",
        &[
            (
                "management",
                F::Str("How the SSD is managed: Authorized or Delegated"),
            ),
            ("city_code", F::Str("The city (issuer region) code")),
        ],
    ),
    (
        "CardReq",
        &[
            ("card_no", F::Str("The card number (20 hex digits)")),
            ("seid", F::Str("The SE (hex SEID)")),
        ],
    ),
    (
        "RefundReq",
        &[
            ("card_no", F::Str("The card number")),
            ("seid", F::Str("The SE")),
            ("refund_account", F::Str("Where the refund goes")),
        ],
    ),
    (
        "TransferInReq",
        &[
            ("transfer_code", F::Str("The code the transfer out gave")),
            ("management", F::Str("How the new SSD is managed")),
        ],
    ),
    (
        "TopupOrderReq",
        &[
            ("card_no", F::Str("The card to load")),
            ("seid", F::Str("Its SE")),
            ("amount", F::Int("Fen")),
            (
                "pay_channel",
                F::Str("01 UnionPay, 02 Alipay, 03 WeChat, 04 Hebao, 99 test"),
            ),
        ],
    ),
    ("OrderReq", &[("order_id", F::Str("The order id"))]),
    (
        "OrderResp",
        &[
            ("order_id", F::Str("The order id")),
            ("state", F::Str("CREATED, PAID, LOAD_REQUESTED, LOADED, …")),
            ("amount", F::Int("Fen")),
        ],
    ),
    ("AppQueryReq", &[("seid", F::OptStr("The SE, if known"))]),
    (
        "ApduResultReq",
        &[("response", F::Ref("RelayResponse", "The SE's answers"))],
    ),
    ("Empty", &[]),
    (
        "RelayRequest",
        &[
            ("session_id", F::Str("The flow's session")),
            ("seq", F::Int("The message number in the session, from 1")),
            ("capdus", F::HexArray("The command APDUs, in order")),
            ("expect", F::Array("Expect", "One expectation per command")),
            ("final", F::Bool("True when nothing follows this message")),
        ],
    ),
    (
        "Expect",
        &[("sw", F::OptStr("The status word expected (hex), or null"))],
    ),
    (
        "RelayResponse",
        &[
            ("session_id", F::Str("The flow's session")),
            ("seq", F::Int("The message number answered")),
            ("rapdus", F::HexArray("The response APDUs (data ‖ SW1 SW2)")),
        ],
    ),
    (
        "FlowResp",
        &[
            ("txn_id", F::Str("The flow")),
            ("kind", F::Str("Which flow")),
            ("status", F::Str("RUNNING, COMPLETED or FAILED")),
            (
                "instance_state",
                F::Str("The card instance's state (tsm-gp.md §8)"),
            ),
            ("step", F::OptStr("The step in progress")),
            (
                "step_index",
                F::Int("0-based index of the step in progress"),
            ),
            ("step_count", F::Int("How many steps the flow has")),
            (
                "relay",
                F::OptRef("RelayRequest", "The next relay message (RUNNING only)"),
            ),
            (
                "outcome",
                F::AnyObject("The result (COMPLETED only), or null"),
            ),
        ],
    ),
    (
        "CardSummary",
        &[
            ("card_no", F::Str("The card number")),
            ("seid", F::Str("The SE")),
            ("state", F::Str("The §8 state")),
        ],
    ),
    (
        "CardsResp",
        &[(
            "cards",
            F::Array("CardSummary", "The device's card instances"),
        )],
    ),
    // The inter-platform messages (SP-TSM → SEI-TSM): names, wrapped blobs, verdicts, tokens;
    // never a key value.
    (
        "ISDChannelInfoReq",
        &[(
            "keys",
            F::Any("The ISD's keys: {\"Isd\": {\"master\", \"seid\"}}"),
        )],
    ),
    (
        "ISDChannelInfoResp",
        &[
            ("version", F::Int("The key version")),
            ("algorithm", F::Str("TDES, AES or SM4")),
            ("key_len", F::Int("The key length, bytes")),
        ],
    ),
    (
        "ISDChannelOpReq",
        &[
            ("keys", F::Any("The ISD's keys")),
            ("operation", F::Str("TDES_CBC (SCP02) or CMAC (SCP03, SM4)")),
            ("key", F::Str("Which static key: ENC, MAC or DEK")),
            ("data", F::Hex("The block's input")),
            (
                "recipient",
                F::Hex("The SM2 public key (SEC1) the result is encrypted for"),
            ),
        ],
    ),
    (
        "ISDChannelOpResp",
        &[(
            "wrapped",
            F::Hex("The 16-byte result, SM2-encrypted (C1C3C2) for the recipient"),
        )],
    ),
    (
        "AcquireTokenReq",
        &[
            ("signer", F::Str("The SEI's token signing key (name)")),
            (
                "kind",
                F::Str("LOAD, INSTALL, MAKE_SELECTABLE, EXTRADITION, REGISTRY_UPDATE or DELETE"),
            ),
            ("p1", F::Int("The command's P1")),
            ("p2", F::Int("The command's P2")),
            ("data", F::Hex("The command's data field before the token")),
        ],
    ),
    ("AcquireTokenResp", &[("token", F::Hex("The token"))]),
    (
        "ReceiptVerifyReq",
        &[
            ("key", F::Str("The SEI's receipt key (name)")),
            (
                "response",
                F::Hex("The card's response data (confirmation and receipt)"),
            ),
            ("kind", F::Str("The command, as AcquireTokenReq.kind")),
            ("aids", F::HexArray("The receipt context's AIDs")),
        ],
    ),
    ("ReceiptVerifyResp", &[]),
    (
        "SsdKeyReq",
        &[
            ("key", F::Str("The key's name (an SSD's initial key set)")),
            (
                "version",
                F::OptInt("CreateSSDReq: the key version of the new set"),
            ),
        ],
    ),
    (
        "KeyQueryResp",
        &[("present", F::Bool("True when the SEI holds the key"))],
    ),
    ("CreateSSDResp", &[]),
    ("DeleteSSDResp", &[]),
    (
        "SSDFirstKeysReq",
        &[
            ("key", F::Str("The SSD's initial key set (name)")),
            ("under", F::Any("The ISD whose DEK wraps it")),
            (
                "encryption",
                F::Any("StaticDek, or {\"Scp02SessionDek\": {\"sequence_counter\"}}"),
            ),
        ],
    ),
    (
        "SSDFirstKeysResp",
        &[
            (
                "data",
                F::Hex("PUT KEY's data field: KVN and the encrypted keys with their KCVs"),
            ),
            ("check_values", F::HexArray("The three check values")),
        ],
    ),
    (
        "SSDKeyHandoverReq",
        &[
            ("key", F::Str("The SSD's initial key set (name)")),
            (
                "recipient",
                F::Hex("The SP's transport public key (SEC1), as the SEI pins it"),
            ),
        ],
    ),
    (
        "SSDKeyHandoverResp",
        &[("wrapped", F::Hex("The set encrypted for the transport key"))],
    ),
];

/// The member names of a body schema (for the tests).
pub fn body_members(schema: &str) -> Option<Vec<&'static str>> {
    BODIES
        .iter()
        .find(|(name, _)| *name == schema)
        .map(|(_, members)| members.iter().map(|(m, _)| *m).collect())
}

fn string(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
}

fn reference(name: &str) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(name))
}

fn body_schema(members: &[(&str, F)]) -> Schema {
    let mut object = ObjectBuilder::new().schema_type(Type::Object);
    for (name, shape) in members {
        let (schema, required): (RefOr<Schema>, bool) = match *shape {
            F::Str(d) => (string(d).into(), true),
            F::Hex(d) => (string(d).pattern(Some("^([0-9A-Fa-f]{2})*$")).into(), true),
            F::Int(d) => (
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0))
                    .description(Some(d))
                    .into(),
                true,
            ),
            F::Bool(d) => (
                ObjectBuilder::new()
                    .schema_type(Type::Boolean)
                    .description(Some(d))
                    .into(),
                true,
            ),
            F::OptInt(d) => (
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0))
                    .description(Some(d))
                    .into(),
                false,
            ),
            F::Any(d) => (
                ObjectBuilder::new()
                    .schema_type(SchemaType::AnyValue)
                    .description(Some(d))
                    .into(),
                true,
            ),
            F::OptStr(d) => (
                ObjectBuilder::new()
                    .schema_type(SchemaType::Array(vec![Type::String, Type::Null]))
                    .description(Some(d))
                    .into(),
                false,
            ),
            F::Ref(r, d) => {
                let mut r = Ref::from_schema_name(r);
                r.description = d.to_string();
                (RefOr::Ref(r), true)
            }
            F::OptRef(r, d) => (
                Schema::OneOf(
                    utoipa::openapi::schema::OneOfBuilder::new()
                        .item(reference(r))
                        .item(ObjectBuilder::new().schema_type(Type::Null))
                        .description(Some(d))
                        .build(),
                )
                .into(),
                false,
            ),
            F::HexArray(d) => (
                ArrayBuilder::new()
                    .items(string("hex"))
                    .description(Some(d))
                    .into(),
                true,
            ),
            F::Array(r, d) => (
                ArrayBuilder::new()
                    .items(reference(r))
                    .description(Some(d))
                    .into(),
                true,
            ),
            F::AnyObject(d) => (
                ObjectBuilder::new()
                    .schema_type(SchemaType::Array(vec![Type::Object, Type::Null]))
                    .description(Some(d))
                    .into(),
                false,
            ),
        };
        object = object.property(*name, schema);
        if required {
            object = object.required(*name);
        }
    }
    Schema::Object(
        object
            .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)))
            .build(),
    )
}

fn envelope_schema() -> Schema {
    let members = [
        ("version", "The envelope version, 1.0"),
        ("msg_type", "The message type"),
        ("msg_no", "Its number (a response's is its request's + 1)"),
        ("sender_id", "Who signed it"),
        ("receiver_id", "For whom"),
        ("txn_id", "The business transaction (flow)"),
        ("request_id", "The idempotency key"),
        ("nonce", "Fresh per message, hex (8 to 64 bytes)"),
        ("timestamp", "When it was signed, RFC 3339"),
        ("cert_sn", "The signer's key id"),
        (
            "sign",
            "The signature over the JCS form without sign, base64",
        ),
    ];
    let mut object = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(
            "The signed envelope (tsm-gp.md §7). Responses carry result; requests do not.",
        ));
    for (name, description) in members {
        object = object.property(name, string(description)).required(name);
    }
    object = object
        .property(
            "body",
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .description(Some("The message's own members")),
        )
        .required("body")
        .property(
            "sign_alg",
            string("The signature algorithm").enum_values(Some([
                "SM2-SM3",
                "RSA2048-SHA256",
                "RSA3072-SHA256",
            ])),
        )
        .required("sign_alg")
        .property("result", reference("ResultInfo"));
    Schema::Object(
        object
            .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)))
            .build(),
    )
}

fn result_schema() -> Schema {
    let codes: Vec<String> = Code::ALL
        .iter()
        .map(|c| format!("{} (HTTP {})", c.as_str(), c.http_status()))
        .collect();
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property(
                "code",
                string(&format!("The result code: {}", codes.join(", ")))
                    .enum_values(Some(Code::ALL.iter().map(|c| c.as_str()))),
            )
            .required("code")
            .property("msg", string("A short text for people"))
            .required("msg")
            .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)))
            .build(),
    )
}

fn envelope_with(body: &str) -> RefOr<Schema> {
    Schema::AllOf(
        AllOfBuilder::new()
            .item(reference("Envelope"))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Object)
                    .property("body", reference(body)),
            )
            .build(),
    )
    .into()
}

fn json(schema: RefOr<Schema>) -> utoipa::openapi::Content {
    ContentBuilder::new().schema(Some(schema)).build()
}

/// A response of JSON `schema`.
fn json_response(description: impl Into<String>, schema: RefOr<Schema>) -> ResponseBuilder {
    ResponseBuilder::new()
        .description(description)
        .content("application/json", json(schema))
}

/// A required request body of JSON `schema`.
fn json_body(schema: RefOr<Schema>) -> utoipa::openapi::request_body::RequestBody {
    RequestBodyBuilder::new()
        .required(Some(Required::True))
        .content("application/json", json(schema))
        .build()
}

fn business_operation(
    def: api::MessageDef,
    body: &str,
    tag: &str,
) -> utoipa::openapi::path::Operation {
    let mut op = OperationBuilder::new()
        .operation_id(Some(def.request))
        .tag(tag)
        .summary(Some(format!(
            "{} (msg_no {}) → {}",
            def.request, def.msg_no, def.response
        )))
        .request_body(Some(json_body(envelope_with(body))))
        .response(
            "200",
            json_response(
                format!("{} signed by the TSM, result 0000", def.response),
                envelope_with(def.response),
            ),
        );
    let mut statuses: Vec<u16> = Code::ALL
        .iter()
        .map(|c| c.http_status())
        .filter(|&s| s != 200)
        .collect();
    statuses.push(413);
    statuses.sort_unstable();
    statuses.dedup();
    for status in statuses {
        let codes: Vec<&str> = Code::ALL
            .iter()
            .filter(|c| c.http_status() == status || (status == 413 && **c == Code::BadRequest))
            .map(|c| c.as_str())
            .collect();
        let description = if status == 413 {
            "The body is over the limit: a signed refusal, result 1006".to_string()
        } else {
            format!("A signed refusal, result {}", codes.join(" or "))
        };
        op = op.response(
            status.to_string(),
            json_response(description, reference("Envelope")),
        );
    }
    op.build()
}

/// A string parameter of an admin or registry path: its name, where it goes, whether it is
/// required.
type Param = (&'static str, ParameterIn, bool);

/// The JSON answer of an admin or registry operation.
#[derive(Clone, Copy)]
enum Answer {
    /// One record of the named schema.
    One(&'static str),
    /// An array of them.
    Many(&'static str),
}

impl Answer {
    fn schema(self) -> RefOr<Schema> {
        match self {
            Self::One(name) => reference(name),
            Self::Many(name) => array_of(name),
        }
    }
}

/// An operation of `tag` under the bearer scheme `scheme` whose success, status `ok`, is
/// `answer`; with its string `parameters`.
fn secured_operation(
    (id, tag, summary): (&str, &str, &str),
    scheme: &str,
    (ok, answer): (&str, Answer),
    parameters: &[Param],
) -> OperationBuilder {
    let mut op = OperationBuilder::new()
        .operation_id(Some(id))
        .tag(tag)
        .summary(Some(summary))
        .security(SecurityRequirement::new(scheme, Vec::<String>::new()))
        .response(ok, json_response("The answer", answer.schema()));
    for (name, place, required) in parameters {
        op = op.parameter(
            ParameterBuilder::new()
                .name(*name)
                .parameter_in(place.clone())
                .required(if *required {
                    Required::True
                } else {
                    Required::False
                })
                .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
        );
    }
    op
}

/// One read of the admin API: `GET path` answering `answer`, under `admin_token`.
struct AdminRead {
    path: &'static str,
    id: &'static str,
    summary: &'static str,
    answer: Answer,
    parameters: &'static [Param],
}

/// The admin API's reads (tsm-gp.md §8: the records an operator inspects).
const ADMIN_READS: &[AdminRead] = &[
    AdminRead {
        path: "/admin/v1/ses",
        id: "admin_ses",
        summary: "Every registered SE",
        answer: Answer::Many("SeView"),
        parameters: &[],
    },
    AdminRead {
        path: "/admin/v1/cards",
        id: "admin_all_cards",
        summary: "Every card instance",
        answer: Answer::Many("CardInstanceView"),
        parameters: &[],
    },
    AdminRead {
        path: "/admin/v1/ses/{seid}",
        id: "admin_se",
        summary: "One SE",
        answer: Answer::One("SeView"),
        parameters: &[("seid", ParameterIn::Path, true)],
    },
    AdminRead {
        path: "/admin/v1/ses/{seid}/cards",
        id: "admin_cards",
        summary: "The card instances on an SE",
        answer: Answer::Many("CardInstanceView"),
        parameters: &[("seid", ParameterIn::Path, true)],
    },
    AdminRead {
        path: "/admin/v1/flows",
        id: "admin_flows",
        summary: "Flows by status (RUNNING by default; COMPLETED, FAILED), of one SE or of all",
        answer: Answer::Many("FlowView"),
        parameters: &[
            ("status", ParameterIn::Query, false),
            ("seid", ParameterIn::Query, false),
        ],
    },
    AdminRead {
        path: "/admin/v1/flows/{id}",
        id: "admin_flow",
        summary: "One flow",
        answer: Answer::One("FlowView"),
        parameters: &[("id", ParameterIn::Path, true)],
    },
    AdminRead {
        path: "/admin/v1/audit/verify",
        id: "admin_verify_audit",
        summary: "Verifies the audit chain",
        answer: Answer::One("ChainView"),
        parameters: &[],
    },
];

fn admin_operation(read: &AdminRead) -> utoipa::openapi::path::Operation {
    secured_operation(
        (read.id, "admin", read.summary),
        "admin_token",
        ("200", read.answer),
        read.parameters,
    )
    .response(
        "401",
        json_response("No admin token, or another one", reference("ResultInfo")),
    )
    .response(
        "404",
        json_response("No such record", reference("ResultInfo")),
    )
    .build()
}

/// One registry route (tsm-gp.md §2, §6, §8; [`super::admin_write`]): `ok` is the status of
/// success and its answer, `refusals` the other statuses it answers with a [`Refused`] body.
struct RegistryRoute {
    path: &'static str,
    /// `POST` when true, else `GET`.
    post: bool,
    id: &'static str,
    summary: &'static str,
    request: Option<&'static str>,
    ok: (&'static str, Answer),
    refusals: &'static [(&'static str, &'static str)],
    parameters: &'static [Param],
}

const BAD: (&str, &str) = ("400", "A field is malformed: the text names it");
const CONFLICT: (&str, &str) = ("409", "It exists already, or overlaps a record");
const MISSING: (&str, &str) = ("404", "A record it names does not exist");

/// The registry's routes, served when the server has operators (`ServerConfig::with_operators`).
const REGISTRY_ROUTES: &[RegistryRoute] = &[
    RegistryRoute {
        path: "/admin/v1/issuers",
        post: false,
        id: "registry_issuers",
        summary: "Every card issuer",
        request: None,
        ok: ("200", Answer::Many("IssuerDto")),
        refusals: &[],
        parameters: &[],
    },
    RegistryRoute {
        path: "/admin/v1/issuers",
        post: true,
        id: "registry_create_issuer",
        summary: "Creates a card issuer (audited under the operator)",
        request: Some("IssuerDto"),
        ok: ("201", Answer::One("IssuerDto")),
        refusals: &[BAD, CONFLICT],
        parameters: &[],
    },
    RegistryRoute {
        path: "/admin/v1/stock",
        post: false,
        id: "registry_stock",
        summary: "The card stock ranges, with the numbers left, of one issuer or of all",
        request: None,
        ok: ("200", Answer::Many("StockDto")),
        refusals: &[BAD],
        parameters: &[("issuer", ParameterIn::Query, false)],
    },
    RegistryRoute {
        path: "/admin/v1/stock",
        post: true,
        id: "registry_add_stock",
        summary: "Adds a range of card numbers to an issuer's stock (audited)",
        request: Some("StockDto"),
        ok: ("201", Answer::One("StockDto")),
        refusals: &[BAD, MISSING, CONFLICT],
        parameters: &[],
    },
    RegistryRoute {
        path: "/admin/v1/se-profiles",
        post: false,
        id: "registry_se_profiles",
        summary: "Every SE profile",
        request: None,
        ok: ("200", Answer::Many("SeProfileDto")),
        refusals: &[],
        parameters: &[],
    },
    RegistryRoute {
        path: "/admin/v1/se-profiles",
        post: true,
        id: "registry_create_se_profile",
        summary: "Creates an SE profile, matched by CPLC at registration (audited)",
        request: Some("SeProfileDto"),
        ok: ("201", Answer::One("SeProfileDto")),
        refusals: &[BAD, CONFLICT],
        parameters: &[],
    },
    RegistryRoute {
        path: "/admin/v1/ses/{seid}/profile",
        post: true,
        id: "registry_set_se_profile",
        summary: "Sets an SE's profile by hand (audited)",
        request: Some("SetProfile"),
        ok: ("200", Answer::One("SeProfileSet")),
        refusals: &[BAD, MISSING],
        parameters: &[("seid", ParameterIn::Path, true)],
    },
    RegistryRoute {
        path: "/admin/v1/keys",
        post: false,
        id: "registry_key_versions",
        summary: "The keys the TSM uses: names, roles, versions; never a value",
        request: None,
        ok: ("200", Answer::Many("KeyVersionView")),
        refusals: &[],
        parameters: &[],
    },
    RegistryRoute {
        path: "/admin/v1/money-flows",
        post: false,
        id: "registry_money_flows",
        summary: "Failed top-ups and transfers in, with what the records prove of their load",
        request: None,
        ok: ("200", Answer::Many("StuckMoney")),
        refusals: &[],
        parameters: &[],
    },
    RegistryRoute {
        path: "/admin/v1/flows/{id}/abandon",
        post: true,
        id: "registry_abandon_flow",
        summary: "Abandons a failed top-up or transfer in proven NOT_CREDITED: its paid order \
                  cancelled and refunded, or its escrow released; audited under the operator. \
                  Asked again, the same answer",
        request: Some("AbandonReq"),
        ok: ("200", Answer::One("Abandoned")),
        refusals: &[
            ("400", "The reason is empty or too long"),
            ("404", "No such flow"),
            (
                "409",
                "Not abandoned: not a failed money flow, or CARD_MUST_PROVE (a MAC2 \
                 left); the text says why",
            ),
        ],
        parameters: &[("id", ParameterIn::Path, true)],
    },
];

fn registry_operation(route: &RegistryRoute) -> utoipa::openapi::path::Operation {
    let mut op = secured_operation(
        (route.id, "registry", route.summary),
        "operator_token",
        route.ok,
        route.parameters,
    );
    if let Some(body) = route.request {
        op = op.request_body(Some(json_body(reference(body))));
    }
    let always = [
        ("401", "No operator token, or an unknown one"),
        ("500", "Internal error (details in the log only)"),
    ];
    for (status, description) in route.refusals.iter().chain(always.iter()) {
        op = op.response(*status, json_response(*description, reference("Refused")));
    }
    op.build()
}

fn get(op: utoipa::openapi::path::Operation) -> PathItem {
    PathItem::new(HttpMethod::Get, op)
}

fn array_of(name: &str) -> RefOr<Schema> {
    ArrayBuilder::new().items(reference(name)).into()
}

/// An unsecured `GET` with the id `id` and the `(status, description, content type, schema)`
/// answers.
fn plain_get(id: &str, answers: Vec<(&str, &str, &str, RefOr<Schema>)>) -> PathItem {
    let mut op = OperationBuilder::new().operation_id(Some(id));
    for (status, description, content_type, schema) in answers {
        op = op.response(
            status,
            ResponseBuilder::new()
                .description(description)
                .content(content_type, json(schema)),
        );
    }
    get(op.build())
}

/// The document.
pub fn document() -> OpenApi {
    let mut paths = PathsBuilder::new();
    for (messages, body_schema, tag) in [
        (
            MESSAGES,
            request_body_schema as fn(&str) -> Option<&'static str>,
            "business",
        ),
        (PLATFORM_MESSAGES, platform_body_schema, "platform"),
    ] {
        for def in messages {
            let body = body_schema(def.request).unwrap_or("Empty");
            paths = paths.path(
                format!("/v1/{}", def.request),
                PathItem::new(HttpMethod::Post, business_operation(*def, body, tag)),
            );
        }
    }
    for route in REGISTRY_ROUTES {
        let method = if route.post {
            HttpMethod::Post
        } else {
            HttpMethod::Get
        };
        paths = paths.path(route.path, PathItem::new(method, registry_operation(route)));
    }
    for read in ADMIN_READS {
        paths = paths.path(read.path, get(admin_operation(read)));
    }
    let status_ok: RefOr<Schema> = Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property(
                "status",
                string("ok, or unavailable when the store does not answer"),
            )
            .required("status")
            .build(),
    )
    .into();
    let text = ObjectBuilder::new().schema_type(Type::String).into();
    let object = ObjectBuilder::new().schema_type(Type::Object).into();
    let json_type = "application/json";
    paths = paths
        .path(
            "/health",
            plain_get(
                "health",
                vec![
                    (
                        "200",
                        "The service and its store answer",
                        json_type,
                        status_ok.clone(),
                    ),
                    ("503", "The store does not answer", json_type, status_ok),
                ],
            ),
        )
        .path(
            "/metrics",
            plain_get(
                "metrics",
                vec![("200", "Prometheus text format 0.0.4", "text/plain", text)],
            ),
        )
        .path(
            "/openapi.json",
            plain_get("openapi", vec![("200", "This document", json_type, object)]),
        );
    let mut components = ComponentsBuilder::new()
        .schema("Envelope", envelope_schema())
        .schema("ResultInfo", result_schema())
        .schema(SeView::name(), schema_of::<SeView>())
        .schema(CardInstanceView::name(), schema_of::<CardInstanceView>())
        .schema(FlowView::name(), schema_of::<FlowView>())
        .schema(ChainView::name(), schema_of::<ChainView>())
        .schema(IssuerDto::name(), schema_of::<IssuerDto>())
        .schema(StockDto::name(), schema_of::<StockDto>())
        .schema(SeProfileDto::name(), schema_of::<SeProfileDto>())
        .schema(SetProfile::name(), schema_of::<SetProfile>())
        .schema(SeProfileSet::name(), schema_of::<SeProfileSet>())
        .schema(KeyVersionView::name(), schema_of::<KeyVersionView>())
        .schema(StuckMoney::name(), schema_of::<StuckMoney>())
        .schema(LoadVerdict::name(), schema_of::<LoadVerdict>())
        .schema(AbandonReq::name(), schema_of::<AbandonReq>())
        .schema(Abandoned::name(), schema_of::<Abandoned>())
        .schema(Refused::name(), schema_of::<Refused>())
        .security_scheme(
            "operator_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An operator's token (registry routes); the audit rows name its label",
                    ))
                    .build(),
            ),
        )
        .security_scheme(
            "admin_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The admin token"))
                    .build(),
            ),
        );
    for (name, members) in BODIES {
        components = components.schema(*name, body_schema(members));
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("ykt TSM")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "The TSM's business API (signed envelopes, tsm-gp.md §7), the inter-platform \
                     API (SP-TSM to SEI-TSM), the admin API and the operators' registry",
                ))
                .build(),
        )
        .paths(paths.build())
        .components(Some(components.build()))
        .build()
}

fn schema_of<T: ToSchema>() -> RefOr<Schema> {
    T::schema()
}

/// The document as JSON text.
pub(crate) fn document_json() -> String {
    document().to_json().unwrap_or_else(|e| {
        tracing::error!(error = %e, "encoding the OpenAPI document");
        "{}".to_string()
    })
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashSet};

    use serde_json::{Value, json};

    use super::*;

    fn served() -> Value {
        serde_json::from_str(&document_json()).unwrap()
    }

    fn statuses(op: &Value) -> BTreeSet<String> {
        op["responses"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    }

    fn parameters(op: &Value) -> Vec<(String, String, bool)> {
        op["parameters"].as_array().map_or(Vec::new(), |ps| {
            ps.iter()
                .map(|p| {
                    let text = |k: &str| p[k].as_str().unwrap().to_string();
                    (text("name"), text("in"), p["required"] == json!(true))
                })
                .collect()
        })
    }

    fn expected(params: &[Param]) -> Vec<(String, String, bool)> {
        params
            .iter()
            .map(|(name, place, required)| {
                let place = serde_json::to_value(place).unwrap();
                (name.to_string(), place.as_str().unwrap().into(), *required)
            })
            .collect()
    }

    #[test]
    fn every_admin_read_is_a_get_under_the_admin_token() {
        let doc = served();
        for read in ADMIN_READS {
            let op = &doc["paths"][read.path]["get"];
            assert_eq!(op["operationId"], read.id, "{}", read.path);
            assert_eq!(op["tags"], json!(["admin"]));
            assert_eq!(
                op["security"],
                json!([{ "admin_token": [] }]),
                "{}",
                read.path
            );
            let want: BTreeSet<String> = ["200", "401", "404"].map(String::from).into();
            assert_eq!(statuses(op), want, "{}", read.path);
            assert_eq!(
                op["responses"]["200"]["content"]["application/json"]["schema"],
                serde_json::to_value(read.answer.schema()).unwrap()
            );
            assert_eq!(parameters(op), expected(read.parameters), "{}", read.path);
        }
    }

    #[test]
    fn every_registry_route_has_its_method_body_refusals_and_the_operator_token() {
        let doc = served();
        for route in REGISTRY_ROUTES {
            let method = if route.post { "post" } else { "get" };
            let op = &doc["paths"][route.path][method];
            assert_eq!(op["operationId"], route.id, "{method} {}", route.path);
            assert_eq!(op["tags"], json!(["registry"]));
            assert_eq!(op["security"], json!([{ "operator_token": [] }]));
            let mut want: BTreeSet<String> = route.refusals.iter().map(|r| r.0.into()).collect();
            want.extend([route.ok.0, "401", "500"].map(String::from));
            assert_eq!(statuses(op), want, "{method} {}", route.path);
            for (status, _) in route.refusals {
                assert_eq!(
                    op["responses"][status]["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/Refused"
                );
            }
            let body = &op["requestBody"]["content"]["application/json"]["schema"]["$ref"];
            match route.request {
                Some(name) => assert_eq!(*body, format!("#/components/schemas/{name}")),
                None => assert!(op.get("requestBody").is_none(), "{}", route.path),
            }
            assert_eq!(parameters(op), expected(route.parameters));
        }
    }

    #[test]
    fn every_operation_is_listed_once_with_its_own_id() {
        let doc = served();
        let mut ids = HashSet::new();
        let mut count = 0;
        for item in doc["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                count += 1;
                let id = op["operationId"].as_str().unwrap().to_string();
                assert!(ids.insert(id.clone()), "{id} twice");
            }
        }
        let fixed = ["health", "metrics", "openapi"];
        assert_eq!(
            count,
            MESSAGES.len()
                + PLATFORM_MESSAGES.len()
                + ADMIN_READS.len()
                + REGISTRY_ROUTES.len()
                + fixed.len()
        );
        for def in MESSAGES.iter().chain(PLATFORM_MESSAGES) {
            let op = &doc["paths"][format!("/v1/{}", def.request)]["post"];
            assert_eq!(op["operationId"], def.request);
        }
        for id in fixed {
            assert!(ids.contains(id), "{id}");
        }
    }
}
