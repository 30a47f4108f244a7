//! Calls and call sites, as a plan sees them.

use crate::decision::hash_str_const;

/// One call, as a plan sees it.
#[derive(Clone, Copy, Debug)]
pub struct Call<'a> {
    /// Identifies the logical request (a request id's hash, a simulated request's number):
    /// the same key, site and attempt always get the same decision.
    pub request_key: u64,
    /// Where the call is made, such as `"checkout/orders"`.
    pub site: &'a str,
    /// The hash of `site`, when known in advance (a [`CallSite`]); `None`: hashed per call.
    pub site_hash: Option<u64>,
    /// The service called, such as `"dynamodb"`.
    pub service: &'a str,
    /// The operation, such as `"PutItem"`.
    pub operation: &'a str,
    /// The route template an HTTP request matched, such as `"/orders/{id}"` (`""`: none),
    /// for rules with a `route` selector. Per request: a [`CallSite`] does not fix it.
    pub route: &'a str,
    /// The attempt number, 0 for the first try, so retries get fresh decisions.
    pub attempt: u32,
    /// The handler's event, for rules with event conditions.
    pub event: Option<&'a serde_json::Value>,
}

impl<'a> Call<'a> {
    /// A first attempt at `site`, with no service, operation or event.
    pub fn new(request_key: u64, site: &'a str) -> Self {
        Self {
            request_key,
            site,
            site_hash: None,
            service: "",
            operation: "",
            route: "",
            attempt: 0,
            event: None,
        }
    }

    /// A first attempt at a pre-hashed [`CallSite`]: the cheapest call to decide.
    ///
    /// ```
    /// use chaos_core::plan::{Call, CallSite};
    /// const ORDERS: CallSite<'static> = CallSite::new("checkout/orders");
    /// let call = Call::at(42, ORDERS).service("dynamodb");
    /// assert_eq!(call.site, "checkout/orders");
    /// ```
    pub fn at(request_key: u64, site: CallSite<'a>) -> Self {
        Self {
            site_hash: Some(site.hash),
            service: site.service,
            operation: site.operation,
            ..Self::new(request_key, site.name)
        }
    }

    /// Sets the service.
    pub fn service(mut self, service: &'a str) -> Self {
        self.service = service;
        self
    }

    /// Sets the operation.
    pub fn operation(mut self, operation: &'a str) -> Self {
        self.operation = operation;
        self
    }

    /// Sets the route template the request matched, such as `"/orders/{id}"`.
    pub fn route(mut self, route: &'a str) -> Self {
        self.route = route;
        self
    }

    /// Sets the attempt number (0 for the first try).
    pub fn attempt(mut self, attempt: u32) -> Self {
        self.attempt = attempt;
        self
    }

    /// Sets the handler's event.
    pub fn event(mut self, event: &'a serde_json::Value) -> Self {
        self.event = Some(event);
        self
    }
}

/// A call site with its hash computed once: in a `const`, at compile time. Decisions key on
/// the site's hash, so a call made at a `CallSite` skips hashing the site's name.
///
/// A site can also name the service and operation every call made there goes to, so that
/// [`Call::at`] fills them in and a plan can resolve the site's rules once
/// ([`CompiledPlan::resolve`](crate::CompiledPlan::resolve), `Site` in the injector).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CallSite<'a> {
    name: &'a str,
    hash: u64,
    service: &'a str,
    operation: &'a str,
}

impl<'a> CallSite<'a> {
    /// A call site named `name`, such as `"checkout/orders"`, with no service or operation.
    pub const fn new(name: &'a str) -> Self {
        Self {
            name,
            hash: hash_str_const(name),
            service: "",
            operation: "",
        }
    }

    /// Sets the service every call at this site goes to.
    ///
    /// ```
    /// use chaos_core::plan::CallSite;
    /// const PUT_ORDER: CallSite<'static> =
    ///     CallSite::new("checkout/orders").service("dynamodb").operation("PutItem");
    /// assert_eq!((PUT_ORDER.service_name(), PUT_ORDER.operation_name()), ("dynamodb", "PutItem"));
    /// ```
    pub const fn service(mut self, service: &'a str) -> Self {
        self.service = service;
        self
    }

    /// Sets the operation every call at this site makes.
    pub const fn operation(mut self, operation: &'a str) -> Self {
        self.operation = operation;
        self
    }

    /// The site's name.
    pub const fn name(&self) -> &'a str {
        self.name
    }

    /// The site's name hashed (what decisions key on).
    pub const fn site_hash(&self) -> u64 {
        self.hash
    }

    /// The service (`""` when not set).
    pub const fn service_name(&self) -> &'a str {
        self.service
    }

    /// The operation (`""` when not set).
    pub const fn operation_name(&self) -> &'a str {
        self.operation
    }
}
