//! A host of contract 1.0, reduced to one request: `old-host LIBRARY PATH`
//! loads the app library as that host did, creates one instance with the
//! services of contract 1.0, answers `GET PATH`, and prints the status on
//! the first line and the body after it.

use abi_stable::{
    library::lib_header_from_path,
    sabi_trait::TD_Opaque,
    std_types::{RArc, RResult, RSlice, RStr, RString, RVec},
};
use app_api::{
    AppModuleRef, AppRequest, DbError, DbRows, DbStatement, DbValue, Host, Host_TO, HostContext,
    level,
};

/// The services of contract 1.0, without a database or uploads: enough for
/// an app to start and to find out which later services are missing.
struct OldServices;

fn no_database() -> DbError {
    DbError {
        kind: "other".into(),
        message: "the old host fixture keeps no database".into(),
    }
}

impl Host for OldServices {
    fn log(&self, level: u8, module: RStr<'_>, message: RStr<'_>) {
        if level <= level::INFO {
            eprintln!("{module}: {message}");
        }
    }

    fn db_query(&self, _sql: RStr<'_>, _params: RSlice<'_, DbValue>) -> RResult<DbRows, DbError> {
        RResult::RErr(no_database())
    }

    fn db_transaction(
        &self,
        _statements: RSlice<'_, DbStatement>,
    ) -> RResult<RVec<DbRows>, DbError> {
        RResult::RErr(no_database())
    }

    fn db_migrate(&self, _steps: RSlice<'_, RStr<'_>>) -> RResult<u32, DbError> {
        RResult::RErr(no_database())
    }

    fn store_upload(&self, _data: RSlice<'_, u8>, _extension: RStr<'_>) -> RResult<RString, RString> {
        RResult::RErr("no uploads here".into())
    }

    fn delete_upload(&self, _name: RStr<'_>) -> RResult<bool, RString> {
        RResult::RErr("no uploads here".into())
    }

    fn prompt(&self, _text: RStr<'_>, _hidden: bool) -> RResult<RString, RString> {
        RResult::RErr("no terminal here".into())
    }
}

fn main() {
    let arguments: Vec<String> = std::env::args().collect();
    let [_, library, path] = arguments.as_slice() else {
        eprintln!("usage: old-host LIBRARY PATH");
        std::process::exit(2);
    };
    let module = match lib_header_from_path(library.as_ref())
        .and_then(|header| header.init_root_module::<AppModuleRef>())
    {
        Ok(module) => module,
        Err(error) => {
            eprintln!("cannot load {library}: {error}");
            std::process::exit(1);
        }
    };
    let context = HostContext {
        mount_name: "probe".into(),
        prefix: "".into(),
        static_url_path: "/static".into(),
        logger: "app_probe".into(),
        session_cookie: "probe_session".into(),
        config_json: "{}".into(),
        secret: vec![7; 64].into(),
        max_log_level: level::INFO,
        host: Host_TO::from_ptr(RArc::new(OldServices), TD_Opaque),
        extensions: RVec::new(),
    };
    let instance = match (module.instantiate())(context).into_result() {
        Ok(instance) => instance,
        Err(error) => {
            eprintln!("the app did not start: {}", error.message);
            std::process::exit(1);
        }
    };
    let request = AppRequest {
        method: "GET".into(),
        scheme: "http".into(),
        host: "localhost".into(),
        script_root: "".into(),
        path: path.as_str().into(),
        query: "".into(),
        headers: RVec::new(),
        body: RVec::new(),
        remote_addr: "127.0.0.1:1".into(),
        request_id: "old-host".into(),
        extensions: RVec::new(),
    };
    match instance.handle(&request).into_result() {
        Ok(response) => {
            println!("{}", response.status);
            println!("{}", String::from_utf8_lossy(&response.body));
        }
        Err(error) => {
            println!("{}", error.status);
            println!("{}", error.message);
        }
    }
    instance.shutdown();
}
