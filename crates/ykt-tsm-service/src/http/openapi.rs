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
        .request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(Required::True))
                .content("application/json", json(envelope_with(body)))
                .build(),
        ))
        .response(
            "200",
            ResponseBuilder::new()
                .description(format!("{} signed by the TSM, result 0000", def.response))
                .content("application/json", json(envelope_with(def.response))),
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
            ResponseBuilder::new()
                .description(description)
                .content("application/json", json(reference("Envelope"))),
        );
    }
    op.build()
}

fn admin_operation(
    id: &str,
    summary: &str,
    answer: RefOr<Schema>,
    parameters: &[(&str, ParameterIn, bool)],
) -> utoipa::openapi::path::Operation {
    let mut op = OperationBuilder::new()
        .operation_id(Some(id))
        .tag("admin")
        .summary(Some(summary))
        .security(SecurityRequirement::new(
            "admin_token",
            Vec::<String>::new(),
        ))
        .response(
            "200",
            ResponseBuilder::new()
                .description("The answer")
                .content("application/json", json(answer)),
        )
        .response(
            "401",
            ResponseBuilder::new()
                .description("No admin token, or another one")
                .content("application/json", json(reference("ResultInfo"))),
        )
        .response(
            "404",
            ResponseBuilder::new()
                .description("No such record")
                .content("application/json", json(reference("ResultInfo"))),
        );
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
    op.build()
}

/// One registry operation (tsm-gp.md §2, §6, §8; [`super::admin_write`]): `ok` is the status
/// of success, `refusals` the other statuses it answers with a [`Refused`] body.
fn registry_operation(
    id: &str,
    summary: &str,
    request: Option<&str>,
    ok: (&str, RefOr<Schema>),
    refusals: &[(&str, &str)],
    parameters: &[(&str, ParameterIn, bool)],
) -> utoipa::openapi::path::Operation {
    let mut op = OperationBuilder::new()
        .operation_id(Some(id))
        .tag("registry")
        .summary(Some(summary))
        .security(SecurityRequirement::new(
            "operator_token",
            Vec::<String>::new(),
        ))
        .response(
            ok.0,
            ResponseBuilder::new()
                .description("The answer")
                .content("application/json", json(ok.1)),
        );
    if let Some(body) = request {
        op = op.request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(Required::True))
                .content("application/json", json(reference(body)))
                .build(),
        ));
    }
    let always = [
        ("401", "No operator token, or an unknown one"),
        ("500", "Internal error (details in the log only)"),
    ];
    for (status, description) in refusals.iter().chain(always.iter()) {
        op = op.response(
            *status,
            ResponseBuilder::new()
                .description(*description)
                .content("application/json", json(reference("Refused"))),
        );
    }
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
    op.build()
}

/// The registry's paths, served when the server has operators (`ServerConfig::with_operators`).
fn registry_paths(paths: PathsBuilder) -> PathsBuilder {
    const BAD: (&str, &str) = ("400", "A field is malformed: the text names it");
    const CONFLICT: (&str, &str) = ("409", "It exists already, or overlaps a record");
    const MISSING: (&str, &str) = ("404", "A record it names does not exist");
    let post = |op| PathItem::new(HttpMethod::Post, op);
    paths
        .path(
            "/admin/v1/issuers",
            get(registry_operation(
                "registry_issuers",
                "Every card issuer",
                None,
                ("200", array_of("IssuerDto")),
                &[],
                &[],
            )),
        )
        .path(
            "/admin/v1/issuers",
            post(registry_operation(
                "registry_create_issuer",
                "Creates a card issuer (audited under the operator)",
                Some("IssuerDto"),
                ("201", reference("IssuerDto")),
                &[BAD, CONFLICT],
                &[],
            )),
        )
        .path(
            "/admin/v1/stock",
            get(registry_operation(
                "registry_stock",
                "The card stock ranges, with the numbers left, of one issuer or of all",
                None,
                ("200", array_of("StockDto")),
                &[BAD],
                &[("issuer", ParameterIn::Query, false)],
            )),
        )
        .path(
            "/admin/v1/stock",
            post(registry_operation(
                "registry_add_stock",
                "Adds a range of card numbers to an issuer's stock (audited)",
                Some("StockDto"),
                ("201", reference("StockDto")),
                &[BAD, MISSING, CONFLICT],
                &[],
            )),
        )
        .path(
            "/admin/v1/se-profiles",
            get(registry_operation(
                "registry_se_profiles",
                "Every SE profile",
                None,
                ("200", array_of("SeProfileDto")),
                &[],
                &[],
            )),
        )
        .path(
            "/admin/v1/se-profiles",
            post(registry_operation(
                "registry_create_se_profile",
                "Creates an SE profile, matched by CPLC at registration (audited)",
                Some("SeProfileDto"),
                ("201", reference("SeProfileDto")),
                &[BAD, CONFLICT],
                &[],
            )),
        )
        .path(
            "/admin/v1/ses/{seid}/profile",
            post(registry_operation(
                "registry_set_se_profile",
                "Sets an SE's profile by hand (audited)",
                Some("SetProfile"),
                ("200", reference("SeProfileSet")),
                &[BAD, MISSING],
                &[("seid", ParameterIn::Path, true)],
            )),
        )
        .path(
            "/admin/v1/keys",
            get(registry_operation(
                "registry_key_versions",
                "The keys the TSM uses: names, roles, versions; never a value",
                None,
                ("200", array_of("KeyVersionView")),
                &[],
                &[],
            )),
        )
        .path(
            "/admin/v1/money-flows",
            get(registry_operation(
                "registry_money_flows",
                "Failed top-ups and transfers in, with what the records prove of their load",
                None,
                ("200", array_of("StuckMoney")),
                &[],
                &[],
            )),
        )
        .path(
            "/admin/v1/flows/{id}/abandon",
            post(registry_operation(
                "registry_abandon_flow",
                "Abandons a failed top-up or transfer in proven NOT_CREDITED: its paid order \
                 cancelled and refunded, or its escrow released; audited under the operator. \
                 Asked again, the same answer",
                Some("AbandonReq"),
                ("200", reference("Abandoned")),
                &[
                    ("400", "The reason is empty or too long"),
                    ("404", "No such flow"),
                    (
                        "409",
                        "Not abandoned: not a failed money flow, or CARD_MUST_PROVE (a MAC2 \
                         left); the text says why",
                    ),
                ],
                &[("id", ParameterIn::Path, true)],
            )),
        )
}

fn get(op: utoipa::openapi::path::Operation) -> PathItem {
    PathItem::new(HttpMethod::Get, op)
}

fn array_of(name: &str) -> RefOr<Schema> {
    ArrayBuilder::new().items(reference(name)).into()
}

/// The document.
pub fn document() -> OpenApi {
    let mut paths = PathsBuilder::new();
    for def in MESSAGES {
        let body = request_body_schema(def.request).unwrap_or("Empty");
        paths = paths.path(
            format!("/v1/{}", def.request),
            PathItem::new(HttpMethod::Post, business_operation(*def, body, "business")),
        );
    }
    for def in PLATFORM_MESSAGES {
        let body = platform_body_schema(def.request).unwrap_or("Empty");
        paths = paths.path(
            format!("/v1/{}", def.request),
            PathItem::new(HttpMethod::Post, business_operation(*def, body, "platform")),
        );
    }
    paths = registry_paths(paths);
    let path = ParameterIn::Path;
    let query = ParameterIn::Query;
    paths = paths
        .path(
            "/admin/v1/ses",
            get(admin_operation(
                "admin_ses",
                "Every registered SE",
                array_of("SeView"),
                &[],
            )),
        )
        .path(
            "/admin/v1/cards",
            get(admin_operation(
                "admin_all_cards",
                "Every card instance",
                array_of("CardInstanceView"),
                &[],
            )),
        )
        .path(
            "/admin/v1/ses/{seid}",
            get(admin_operation(
                "admin_se",
                "One SE",
                reference("SeView"),
                &[("seid", path.clone(), true)],
            )),
        )
        .path(
            "/admin/v1/ses/{seid}/cards",
            get(admin_operation(
                "admin_cards",
                "The card instances on an SE",
                array_of("CardInstanceView"),
                &[("seid", path.clone(), true)],
            )),
        )
        .path(
            "/admin/v1/flows",
            get(admin_operation(
                "admin_flows",
                "Flows by status (RUNNING by default; COMPLETED, FAILED), of one SE or of all",
                array_of("FlowView"),
                &[("status", query.clone(), false), ("seid", query, false)],
            )),
        )
        .path(
            "/admin/v1/flows/{id}",
            get(admin_operation(
                "admin_flow",
                "One flow",
                reference("FlowView"),
                &[("id", path, true)],
            )),
        )
        .path(
            "/admin/v1/audit/verify",
            get(admin_operation(
                "admin_verify_audit",
                "Verifies the audit chain",
                reference("ChainView"),
                &[],
            )),
        );
    let status_ok = Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property(
                "status",
                string("ok, or unavailable when the store does not answer"),
            )
            .required("status")
            .build(),
    );
    paths = paths
        .path(
            "/health",
            get(OperationBuilder::new()
                .operation_id(Some("health"))
                .response(
                    "200",
                    ResponseBuilder::new()
                        .description("The service and its store answer")
                        .content("application/json", json(status_ok.clone().into())),
                )
                .response(
                    "503",
                    ResponseBuilder::new()
                        .description("The store does not answer")
                        .content("application/json", json(status_ok.into())),
                )
                .build()),
        )
        .path(
            "/metrics",
            get(OperationBuilder::new()
                .operation_id(Some("metrics"))
                .response(
                    "200",
                    ResponseBuilder::new()
                        .description("Prometheus text format 0.0.4")
                        .content(
                            "text/plain",
                            json(ObjectBuilder::new().schema_type(Type::String).into()),
                        ),
                )
                .build()),
        )
        .path(
            "/openapi.json",
            get(OperationBuilder::new()
                .operation_id(Some("openapi"))
                .response(
                    "200",
                    ResponseBuilder::new().description("This document").content(
                        "application/json",
                        json(ObjectBuilder::new().schema_type(Type::Object).into()),
                    ),
                )
                .build()),
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
