//! One connection to PostgreSQL, driven by the thread that uses it: the
//! connection's socket belongs to a single-threaded runtime of its own,
//! which runs only while a handler's thread waits on it ([`Connection::drive`]),
//! as the `postgres` crate drives its connections. A shared runtime thread
//! driving every socket made each round trip four context switches (the
//! handler's thread to the driver's and back, twice) where this makes it
//! two. And the pool that lends connections to those threads (`r2d2`,
//! made for pools of blocking connections).

use std::{collections::HashMap, future::Future, pin::Pin};

use futures_util::{
    FutureExt,
    future::{Either, select},
};
use tokio_postgres::{Client, NoTls, Statement};

/// Statements a connection keeps prepared, at most; past it, it prepares
/// afresh (apps that write numbers into their SQL make many texts).
const MAX_PREPARED: usize = 256;

/// What drives a connection's socket: tokio-postgres's `Connection`.
type Driver = Pin<Box<dyn Future<Output = Result<(), tokio_postgres::Error>> + Send>>;

/// A connection, its driver and its prepared statements.
pub struct Connection {
    runtime: tokio::runtime::Runtime,
    client: Client,
    driver: Driver,
    prepared: HashMap<String, Statement>,
    /// The driver ended: the server closed the connection, or it broke.
    ended: bool,
}

/// What became of work given to a connection.
pub enum Driven<T, W> {
    /// It ran to its end.
    Done(T),
    /// The connection had ended before any of it was sent: the work, for
    /// another connection to run.
    Unused(W),
    /// The connection ended while it ran: whether the server did it is not
    /// known.
    Ended,
}

/// Why a connection could not be made.
#[derive(Debug)]
pub struct ConnectError(pub String);

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConnectError {}

/// What a connection's work gets: the client, and the statements the
/// connection keeps prepared.
pub struct Session<'c> {
    pub client: &'c mut Client,
    prepared: &'c mut HashMap<String, Statement>,
}

impl Session<'_> {
    /// `sql` prepared on this connection, once.
    pub async fn prepare(&mut self, sql: &str) -> Result<Statement, tokio_postgres::Error> {
        if let Some(statement) = self.prepared.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql).await?;
        if self.prepared.len() >= MAX_PREPARED {
            self.prepared.clear();
        }
        self.prepared.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

impl Connection {
    /// Connects as `config` says.
    fn open(config: &tokio_postgres::Config) -> Result<Connection, ConnectError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| ConnectError(format!("cannot make a runtime: {error}")))?;
        let (client, connection) = runtime
            .block_on(config.connect(NoTls))
            .map_err(|error| ConnectError(error.to_string()))?;
        Ok(Connection {
            runtime,
            client,
            driver: Box::pin(connection),
            prepared: HashMap::new(),
            ended: false,
        })
    }

    /// Runs `work` on this connection, driving its socket meanwhile, on
    /// the calling thread (which must not be inside a runtime:
    /// `blocking::off_runtime`).
    pub fn drive<T, W>(&mut self, work: W) -> Driven<T, W>
    where
        W: AsyncFnOnce(&mut Session<'_>) -> T,
    {
        let Connection {
            runtime,
            client,
            driver,
            prepared,
            ended,
        } = self;
        if *ended {
            return Driven::Unused(work);
        }
        runtime.block_on(async move {
            // A server that went away while the connection sat in the pool
            // left its end of the socket readable: one turn of the runtime
            // reads it, before any of the work is sent.
            tokio::task::yield_now().await;
            if driver.as_mut().now_or_never().is_some() {
                *ended = true;
                return Driven::Unused(work);
            }
            let mut session = Session { client, prepared };
            let work = std::pin::pin!(work(&mut session));
            match select(work, driver.as_mut()).await {
                Either::Left((done, _)) => Driven::Done(done),
                Either::Right(_) => {
                    *ended = true;
                    Driven::Ended
                }
            }
        })
    }
}

/// Makes connections for the pool.
pub struct Connector {
    pub config: tokio_postgres::Config,
}

impl r2d2::ManageConnection for Connector {
    type Connection = Connection;
    type Error = ConnectError;

    fn connect(&self) -> Result<Connection, ConnectError> {
        Connection::open(&self.config)
    }

    fn is_valid(&self, connection: &mut Connection) -> Result<(), ConnectError> {
        match connection.drive(async |session| session.client.simple_query("").await) {
            Driven::Done(Ok(_)) => Ok(()),
            Driven::Done(Err(error)) => Err(ConnectError(error.to_string())),
            Driven::Unused(_) | Driven::Ended => {
                Err(ConnectError("the connection ended".to_owned()))
            }
        }
    }

    fn has_broken(&self, connection: &mut Connection) -> bool {
        connection.ended || connection.client.is_closed()
    }
}
