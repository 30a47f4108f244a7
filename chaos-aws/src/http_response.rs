//! HTTP responses in the shapes Lambda's HTTP front doors expect from a handler: API Gateway
//! REST APIs (payload format 1.0), HTTP APIs (payload format 2.0) and Application Load
//! Balancers, as plain JSON values. How an injected fault becomes an HTTP answer (status,
//! `Retry-After`, the rule header) is decided in one place, chaos-core's
//! [`fault_response`](chaos_core::http::fault_response); [`HttpShape::fault_response`] puts
//! that answer in the front door's shape.

use chaos_core::InjectedError;
use chaos_core::http::ResponseOptions;
use serde_json::{Value, json};

/// Which front door invoked the function, and so which response shape it reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HttpShape {
    /// API Gateway REST API (proxy integration, payload format 1.0).
    ApiGatewayRest,
    /// API Gateway HTTP API (payload format 2.0).
    ApiGatewayHttp,
    /// Application Load Balancer target.
    Alb,
}

impl HttpShape {
    /// The shape an event asks for: ALB events carry `requestContext.elb`, HTTP API events
    /// `version: "2.0"`, REST API events `httpMethod` and `requestContext`. `None` for events
    /// that are not HTTP requests (SQS, EventBridge, direct invokes).
    pub fn of_event(event: &Value) -> Option<Self> {
        let context = event.get("requestContext");
        if context.and_then(|c| c.get("elb")).is_some() {
            Some(Self::Alb)
        } else if event.get("version").and_then(Value::as_str) == Some("2.0") && context.is_some() {
            Some(Self::ApiGatewayHttp)
        } else if event.get("httpMethod").is_some() && context.is_some() {
            Some(Self::ApiGatewayRest)
        } else {
            None
        }
    }

    /// The answer to an injected fault in this shape: the status and headers of chaos-core's
    /// [`fault_response`](chaos_core::http::fault_response) (so a 429 or 503 carries
    /// `Retry-After`, and `x-chaos-rule` names the rule), with a JSON body
    /// `{"message": ...}`: for a `status` fault failure-lambda's `"Injected status code N"`,
    /// so clients written against it read the same answer; otherwise the fault's message.
    ///
    /// ```
    /// use chaos_aws::http_response::HttpShape;
    /// use chaos_core::{InjectedError, InjectedKind};
    ///
    /// let fault = InjectedError { rule: "orders-down".into(), kind: InjectedKind::Status(503) };
    /// let response = HttpShape::Alb.fault_response(&fault);
    /// assert_eq!(response["statusCode"], 503);
    /// assert_eq!(response["statusDescription"], "503 Service Unavailable");
    /// assert_eq!(response["headers"]["retry-after"], "1");
    /// assert_eq!(response["headers"]["x-chaos-rule"], "orders-down");
    /// assert_eq!(response["body"], r#"{"message":"Injected status code 503"}"#);
    /// ```
    pub fn fault_response(self, fault: &InjectedError) -> Value {
        let answer = chaos_core::http::fault_response::<String>(fault, &ResponseOptions::default());
        let status = answer.status().as_u16();
        let message = match fault.kind {
            chaos_core::InjectedKind::Status(status) => format!("Injected status code {status}"),
            _ => fault.to_string(),
        };
        let mut headers = serde_json::Map::new();
        for (name, value) in answer.headers() {
            if let Ok(value) = value.to_str() {
                headers.insert(name.as_str().to_owned(), value.into());
            }
        }
        // The body is JSON, not the text `fault_response` writes.
        headers.insert("content-type".into(), "application/json".into());
        self.response(status, headers, json!({ "message": message }).to_string())
    }

    /// A JSON response with `status`, a JSON `body` and `content-type: application/json`; a
    /// 429 or 503 also says `Retry-After: 1`, as throttling front doors do.
    pub fn json_response(self, status: u16, body: &Value) -> Value {
        let mut headers = serde_json::Map::new();
        headers.insert("content-type".into(), "application/json".into());
        if status == 429 || status == 503 {
            headers.insert("retry-after".into(), "1".into());
        }
        self.response(status, headers, body.to_string())
    }

    fn response(self, status: u16, headers: serde_json::Map<String, Value>, body: String) -> Value {
        let mut response = json!({
            "statusCode": status,
            "headers": headers,
            "body": body,
            "isBase64Encoded": false,
        });
        if self == Self::Alb {
            response["statusDescription"] = format!("{status} {}", reason_phrase(status)).into();
        }
        response
    }
}

/// The standard reason phrase of a status (ALB's `statusDescription` needs one).
pub fn reason_phrase(status: u16) -> &'static str {
    let known = match status {
        200 => Some("OK"),
        400 => Some("Bad Request"),
        401 => Some("Unauthorized"),
        403 => Some("Forbidden"),
        404 => Some("Not Found"),
        408 => Some("Request Timeout"),
        409 => Some("Conflict"),
        429 => Some("Too Many Requests"),
        500 => Some("Internal Server Error"),
        502 => Some("Bad Gateway"),
        503 => Some("Service Unavailable"),
        504 => Some("Gateway Timeout"),
        _ => None,
    };
    // Others by class.
    known.unwrap_or(match status {
        100..=199 => "Informational",
        200..=299 => "Success",
        300..=399 => "Redirection",
        400..=499 => "Client Error",
        _ => "Server Error",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_name_their_shape() {
        let alb =
            json!({"requestContext": {"elb": {"targetGroupArn": "arn"}}, "httpMethod": "GET"});
        let http = json!({"version": "2.0", "requestContext": {"http": {"method": "GET"}}});
        let rest = json!({"httpMethod": "GET", "requestContext": {"stage": "prod"}});
        assert_eq!(HttpShape::of_event(&alb), Some(HttpShape::Alb));
        assert_eq!(HttpShape::of_event(&http), Some(HttpShape::ApiGatewayHttp));
        assert_eq!(HttpShape::of_event(&rest), Some(HttpShape::ApiGatewayRest));
        assert_eq!(HttpShape::of_event(&json!({"Records": []})), None);
    }

    #[test]
    fn responses_carry_status_headers_and_a_string_body() {
        let body = json!({"message": "Injected status code 503"});
        let rest = HttpShape::ApiGatewayRest.json_response(503, &body);
        assert_eq!(rest["statusCode"], 503);
        assert_eq!(rest["headers"]["retry-after"], "1");
        assert_eq!(rest["body"], r#"{"message":"Injected status code 503"}"#);
        assert_eq!(rest["isBase64Encoded"], false);
        assert!(rest.get("statusDescription").is_none());
        let alb = HttpShape::Alb.json_response(418, &body);
        assert_eq!(alb["statusDescription"], "418 Client Error");
        assert!(alb["headers"].get("retry-after").is_none());
        assert_eq!(
            HttpShape::Alb.json_response(503, &body)["statusDescription"],
            "503 Service Unavailable"
        );
    }

    #[test]
    fn fault_answers_follow_chaos_cores_mapping_in_every_shape() {
        use chaos_core::{ErrorKind, InjectedKind};
        let fault = |kind| InjectedError {
            rule: "r".into(),
            kind,
        };
        let shapes = [
            HttpShape::ApiGatewayRest,
            HttpShape::ApiGatewayHttp,
            HttpShape::Alb,
        ];
        let kinds = [
            InjectedKind::Status(418),
            InjectedKind::Status(429),
            InjectedKind::Status(503),
            InjectedKind::Error(ErrorKind::Throttle),
            InjectedKind::Error(ErrorKind::ServerError { status: 502 }),
            InjectedKind::Error(ErrorKind::Timeout),
        ];
        for shape in shapes {
            for kind in kinds.clone() {
                let fault = fault(kind);
                let head =
                    chaos_core::http::fault_response::<String>(&fault, &ResponseOptions::default());
                let response = shape.fault_response(&fault);
                assert_eq!(response["statusCode"], head.status().as_u16(), "{fault}");
                assert_eq!(response["headers"]["x-chaos-rule"], "r");
                assert_eq!(response["headers"]["content-type"], "application/json");
                assert_eq!(
                    response["headers"].get("retry-after").is_some(),
                    head.headers().contains_key("retry-after"),
                    "{fault}"
                );
                let body: Value = serde_json::from_str(response["body"].as_str().unwrap_or(""))
                    .expect("a JSON body");
                assert!(body["message"].is_string());
                assert_eq!(
                    response.get("statusDescription").is_some(),
                    shape == HttpShape::Alb
                );
            }
        }
        // failure-lambda's message for a status fault, the fault's own otherwise.
        let throttle = HttpShape::ApiGatewayRest
            .fault_response(&fault(InjectedKind::Error(ErrorKind::Throttle)));
        assert_eq!(throttle["statusCode"], 429);
        assert!(
            throttle["body"]
                .as_str()
                .is_some_and(|b| b.contains("throttled")),
            "{throttle}"
        );
    }
}
