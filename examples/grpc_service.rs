//! A tonic gRPC service with server-side chaos: injected failures reach tonic's client as the
//! gRPC statuses they stand for (`UNAVAILABLE`, `RESOURCE_EXHAUSTED`, `DEADLINE_EXCEEDED`),
//! and an injected timeout waits for the deadline the client sent in `grpc-timeout`.
//!
//! Run: `cargo run --example grpc_service`. Client and server talk in-process (tonic's client
//! over the server's `Service`, no socket); the test suite runs this under tokio's paused
//! clock (`tests/http_examples.rs`). Messages are plain UTF-8 strings (a ten-line codec), so
//! the example needs no protobuf compiler.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BufMut};
use chaos_core::grpc::AnswerGrpc;
use chaos_core::http::{HttpChaos, HttpChaosLayer};
use chaos_core::{CompiledPlan, Injector};
use http::uri::PathAndQuery;
use tonic::body::Body;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::{Code, Status};
use tower::{Layer, Service};

/// The plan: rules select the gRPC service and method from the request's path.
pub const PLAN: &str = r#"
seed = 99

[[rules]]
name = "orders-unavailable"
fault = { error = { server_error = 503 } }
match = { service = "shop.Orders", operation = "Get" }
probability = 0.15

[[rules]]
name = "orders-throttled"
fault = { error = "throttle" }
match = { service = "shop.Orders", operation = "Get" }
probability = 0.1

[[rules]]
name = "orders-timeout"
fault = { error = "timeout" }
match = { service = "shop.Orders" }
probability = 0.05
"#;

/// The deadline the client sends with every call.
pub const CLIENT_TIMEOUT: Duration = Duration::from_millis(500);

/// Encodes and decodes messages as UTF-8 strings.
#[derive(Clone, Copy, Debug, Default)]
pub struct Utf8Codec;

/// [`Utf8Codec`]'s encoder.
#[derive(Debug)]
pub struct Utf8Encoder;

/// [`Utf8Codec`]'s decoder.
#[derive(Debug)]
pub struct Utf8Decoder;

impl Codec for Utf8Codec {
    type Encode = String;
    type Decode = String;
    type Encoder = Utf8Encoder;
    type Decoder = Utf8Decoder;

    fn encoder(&mut self) -> Utf8Encoder {
        Utf8Encoder
    }

    fn decoder(&mut self) -> Utf8Decoder {
        Utf8Decoder
    }
}

impl Encoder for Utf8Encoder {
    type Item = String;
    type Error = Status;

    fn encode(&mut self, item: String, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(item.as_bytes());
        Ok(())
    }
}

impl Decoder for Utf8Decoder {
    type Item = String;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<String>, Status> {
        let bytes = src.copy_to_bytes(src.remaining());
        String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|error| Status::invalid_argument(error.to_string()))
    }
}

/// `shop.Orders/Get`: answers `order <id>`.
#[derive(Clone, Copy, Debug)]
struct GetOrder;

impl Service<tonic::Request<String>> for GetOrder {
    type Response = tonic::Response<String>;
    type Error = Status;
    type Future = Ready<Result<tonic::Response<String>, Status>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: tonic::Request<String>) -> Self::Future {
        ready(Ok(tonic::Response::new(format!(
            "order {}",
            request.into_inner()
        ))))
    }
}

/// The server, as tonic's generated code would route it: an infallible `http` service.
#[derive(Clone, Copy, Debug, Default)]
pub struct OrdersServer;

type BoxedResponse = Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

impl Service<http::Request<Body>> for OrdersServer {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxedResponse;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> BoxedResponse {
        Box::pin(async move {
            if request.uri().path() == "/shop.Orders/Get" {
                Ok(tonic::server::Grpc::new(Utf8Codec)
                    .unary(GetOrder, request)
                    .await)
            } else {
                Ok(Status::unimplemented("no such method").into_http())
            }
        })
    }
}

/// The server with chaos: what tonic's `Routes` (an `http` service) takes as a layer.
pub fn server_with_chaos(injector: Injector) -> HttpChaos<OrdersServer, AnswerGrpc> {
    HttpChaosLayer::grpc(injector).layer(OrdersServer)
}

/// Calls `shop.Orders/Get` `n` times through the chaos-wrapped server and counts the gRPC
/// codes tonic's client saw.
pub async fn run(n: u32) -> BTreeMap<String, u32> {
    let plan = CompiledPlan::from_toml_str(PLAN).expect("the example plan is valid");
    let mut builder = Injector::builder();
    builder.plan(plan).ignore_env();
    let injector = builder.build().expect("no guardrail is set");
    let mut client = tonic::client::Grpc::new(server_with_chaos(injector));
    let mut codes = BTreeMap::new();
    for id in 0..n {
        let mut request = tonic::Request::new(id.to_string());
        request.set_timeout(CLIENT_TIMEOUT);
        let request_id = format!("call-{id}").parse().expect("ASCII");
        request.metadata_mut().insert("x-request-id", request_id);
        client
            .ready()
            .await
            .expect("the in-process server is always ready");
        let result = client
            .unary(
                request,
                PathAndQuery::from_static("/shop.Orders/Get"),
                Utf8Codec,
            )
            .await;
        let code = match result {
            Ok(response) => {
                assert_eq!(response.into_inner(), format!("order {id}"));
                Code::Ok
            }
            Err(status) => status.code(),
        };
        *codes.entry(format!("{code:?}")).or_insert(0) += 1;
    }
    codes
}

// Under a paused clock the injected timeouts pass in virtual time, not real time.
#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    for (code, count) in run(1000).await {
        println!("{code:<18} x{count}");
    }
}
