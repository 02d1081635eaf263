//! An app of contract 1.0: what an app built with app-api 1.0.0 exports,
//! with the glue its `export_app!` wrote, by hand.

use std::panic::{AssertUnwindSafe, catch_unwind};

use abi_stable::{
    export_root_module,
    prefix_type::PrefixTypeTrait,
    sabi_trait::TD_Opaque,
    std_types::{RNone, RResult, RSlice, RStr, RString, RVec},
};
use app_api::{
    AbiInfo, App, App_TO, AppError, AppInstance, AppModule, AppModuleRef, AppRequest,
    AppResponse, CommandInfo, DbValue, Header, HostContext, HostServices, RouteInfo,
};

struct Greeter {
    mount: String,
    host: HostServices,
}

fn text(status: u16, body: String) -> AppResponse {
    AppResponse {
        status,
        headers: vec![Header {
            name: "content-type".into(),
            value: b"text/plain; charset=utf-8".to_vec().into(),
        }]
        .into(),
        body: body.into_bytes().into(),
    }
}

fn failed(message: String) -> AppError {
    AppError {
        status: 500,
        message: message.into(),
        panicked: false,
        backtrace: RNone,
    }
}

impl Greeter {
    /// Counts visits in the database, with the migrations of contract 1.0.
    fn visits(&self) -> Result<AppResponse, AppError> {
        let steps = [RStr::from_str("CREATE TABLE visits (n INTEGER)")];
        let before = self
            .host
            .db_migrate(RSlice::from_slice(&steps))
            .into_result()
            .map_err(|error| failed(error.message.into()))?;
        let query = |sql: &str| {
            self.host
                .db_query(RStr::from_str(sql), RSlice::from_slice(&[]))
                .into_result()
                .map_err(|error| failed(error.message.into()))
        };
        query("INSERT INTO visits VALUES (1)")?;
        let counted = query("SELECT COUNT(*) FROM visits")?;
        let count = match counted.rows.first().and_then(|row| row.first()) {
            Some(DbValue::Integer(count)) => *count,
            other => return Err(failed(format!("unexpected count {other:?}"))),
        };
        Ok(text(
            200,
            format!("visits: {count} (schema version before: {before})"),
        ))
    }
}

impl App for Greeter {
    fn handle(&self, request: &AppRequest) -> RResult<AppResponse, AppError> {
        catch_unwind(AssertUnwindSafe(|| match request.path.as_str() {
            "/" => Ok(text(
                200,
                format!("hello from an app of contract 1.0, mounted as {}", self.mount),
            )),
            "/db" => self.visits(),
            _ => Ok(text(404, "not found".to_owned())),
        }))
        .unwrap_or_else(|_| Err(failed("panicked".to_owned())))
        .into()
    }

    fn routes(&self) -> RVec<RouteInfo> {
        ["/", "/db"]
            .into_iter()
            .map(|rule| RouteInfo {
                methods: "GET".into(),
                rule: rule.into(),
                endpoint: rule.trim_start_matches('/').into(),
            })
            .collect()
    }

    fn shutdown(&self) {}
}

extern "C" fn abi_info() -> AbiInfo {
    AbiInfo {
        api_version: RStr::from_str(app_api::API_VERSION),
        panic_unwind: cfg!(panic = "unwind"),
    }
}

extern "C" fn name() -> RStr<'static> {
    RStr::from_str("greeter")
}

extern "C" fn instantiate(context: HostContext) -> RResult<AppInstance, AppError> {
    let greeter = Greeter {
        mount: context.mount_name.into(),
        host: context.host,
    };
    RResult::ROk(App_TO::from_value(greeter, TD_Opaque))
}

extern "C" fn commands() -> RVec<CommandInfo> {
    RVec::new()
}

extern "C" fn run_command(
    _context: HostContext,
    _arguments: RVec<RString>,
) -> RResult<RString, AppError> {
    RResult::RErr(failed("no commands".to_owned()))
}

#[export_root_module]
pub fn root_module() -> AppModuleRef {
    AppModule {
        abi_info,
        name,
        instantiate,
        commands,
        run_command,
    }
    .leak_into_prefix()
}
