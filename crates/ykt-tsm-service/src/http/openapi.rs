//! `GET /openapi.json`: the OpenAPI 3.1 document, built with utoipa's builders at start.
//!
//! Every business path `POST /v1/{msg_type}` of [`ykt_tsm::api::MESSAGES`] takes an envelope
//! whose `body` is that message's body schema and answers an envelope whose `body` is the
//! response's; the refusals are listed by HTTP status with their result codes. The admin paths
//! carry the bearer security scheme `admin_token`.
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
use ykt_tsm::api::{self, MESSAGES};

use super::backend::{CardInstanceView, ChainView, FlowView, SeView};

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

fn business_operation(def: api::MessageDef, body: &str) -> utoipa::openapi::path::Operation {
    let mut op = OperationBuilder::new()
        .operation_id(Some(def.request))
        .tag("business")
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
            PathItem::new(HttpMethod::Post, business_operation(*def, body)),
        );
    }
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
                    "The TSM's business API (signed envelopes, tsm-gp.md §7) and admin API",
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
