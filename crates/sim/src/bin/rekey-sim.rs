//! `rekey-sim`: run a vendor simulator from the command line, for trying rekey by
//! hand. Tests and the demo start simulators in-process instead.

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use rekey_sim::admanager::{AdManagerConfig, AdManagerSim, Locale, ReplyShape};
use rekey_sim::broadworks::{BroadWorksConfig, BroadWorksSim};
use rekey_sim::inhouse::{InhouseConfig, InhouseSim};
use rekey_sim::oracle::{ManualResetReply, OracleConfig, OracleSim};
use rekey_sim::smartermail::{SmarterMailConfig, SmarterMailSim};
use rekey_sim::{Behaviour, Faults};

#[derive(Parser)]
#[command(
    version,
    about = "Run a rekey vendor simulator on 127.0.0.1 until Ctrl-C"
)]
struct Cli {
    #[command(subcommand)]
    vendor: Vendor,
}

#[derive(Subcommand)]
enum Vendor {
    /// SmarterMail (REST API v1).
    Smartermail {
        #[command(flatten)]
        common: CommonArgs,
        /// Access-token lifetime in seconds.
        #[arg(long, default_value_t = 900)]
        token_lifetime: u64,
    },
    /// BroadWorks through the Odin API (v2).
    Broadworks {
        #[command(flatten)]
        common: CommonArgs,
        /// Token lifetime in seconds.
        #[arg(long, default_value_t = 86_400)]
        token_lifetime: u64,
        /// How many users (the last ones) lack the Authentication service.
        #[arg(long, default_value_t = 0)]
        without_authentication: usize,
    },
    /// Oracle Primavera Administration (REST API under /cloudapi/restapi).
    Oracle {
        #[command(flatten)]
        common: CommonArgs,
        /// Accept a plain string as the password in manual-reset-pwd.
        #[arg(long)]
        accept_plain_password: bool,
        /// Answer manual-reset-pwd with an array of users instead of the
        /// documented single User object.
        #[arg(long)]
        manual_reset_array: bool,
    },
    /// ManageEngine ADManager Plus (legacy REST API /RestAPI).
    Admanager {
        #[command(flatten)]
        common: CommonArgs,
        /// Successful objects allowed per day of the simulator's clock.
        #[arg(long, default_value_t = 50)]
        daily_limit: usize,
        /// Answer in Spanish (clients must not match message text).
        #[arg(long)]
        spanish: bool,
        /// Per-user results with `status` and `reset`, or in the shape of the
        /// vendor's documented sample (ids and `statusMessage` only).
        #[arg(long, value_enum, default_value_t = Shape::Status)]
        reply_shape: Shape,
    },
    /// Acme Directory, the fictional in-house system of the example connector.
    Inhouse {
        #[command(flatten)]
        common: CommonArgs,
        /// Requests a second one API key may send before getting 429.
        #[arg(long)]
        rate_limit: Option<u32>,
    },
}

/// `--reply-shape` of the ADManager simulator.
#[derive(Clone, Copy, ValueEnum)]
enum Shape {
    /// `status` ("1"/"0") and `reset` with the message.
    Status,
    /// The vendor's documented sample: ids and `statusMessage` only.
    Seed,
}

#[derive(Args)]
struct CommonArgs {
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Ordinary users to create.
    #[arg(long, default_value_t = 20)]
    users: usize,
    /// Latency added to every request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Fraction of requests (0 to 1) answered with an injected 429 or 503.
    #[arg(long, default_value_t = 0.0)]
    fault_rate: f64,
    /// Requests worked on at once; more in flight are answered 429 without
    /// Retry-After (default: no limit).
    #[arg(long)]
    capacity: Option<usize>,
}

impl CommonArgs {
    fn behaviour(&self) -> Behaviour {
        Behaviour {
            latency: Duration::from_millis(self.latency_ms),
            faults: Faults {
                rate: self.fault_rate,
                statuses: vec![429, 503],
                retry_after_secs: Some(1),
                after_apply: 0.0,
            },
            seed: 1,
            capacity: self.capacity,
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.vendor {
        Vendor::Smartermail {
            common,
            token_lifetime,
        } => {
            let config = SmarterMailConfig {
                users: common.users,
                token_lifetime: Duration::from_secs(token_lifetime),
                behaviour: common.behaviour(),
                port: common.port,
                ..SmarterMailConfig::default()
            };
            let sim = SmarterMailSim::start(config).await?;
            println!("SmarterMail simulator at {}", sim.url());
            println!(
                "domain administrator {} / {}; system administrator {} / {}",
                sim.domain_admin(),
                sim.config().admin_password,
                sim.config().sysadmin,
                sim.config().sysadmin_password
            );
            tokio::signal::ctrl_c().await?;
        }
        Vendor::Broadworks {
            common,
            token_lifetime,
            without_authentication,
        } => {
            let config = BroadWorksConfig {
                users: common.users,
                without_authentication,
                token_lifetime: Duration::from_secs(token_lifetime),
                behaviour: common.behaviour(),
                port: common.port,
                ..BroadWorksConfig::default()
            };
            let sim = BroadWorksSim::start(config).await?;
            let config = sim.config();
            println!("Odin API simulator at {}", sim.url());
            println!(
                "administrator {} / {}; service provider {}, group {}",
                config.username, config.password, config.service_provider_id, config.group_id
            );
            tokio::signal::ctrl_c().await?;
        }
        Vendor::Oracle {
            common,
            accept_plain_password,
            manual_reset_array,
        } => {
            let config = OracleConfig {
                users: common.users,
                accept_plain_password,
                manual_reset_reply: if manual_reset_array {
                    ManualResetReply::Array
                } else {
                    ManualResetReply::Object
                },
                behaviour: common.behaviour(),
                port: common.port,
                ..OracleConfig::default()
            };
            let sim = OracleSim::start(config).await?;
            println!("Primavera Administration simulator at {}", sim.url());
            println!(
                "administrator {} / {}; users USER0001 and on",
                sim.config().admin,
                sim.config().admin_password
            );
            tokio::signal::ctrl_c().await?;
        }
        Vendor::Admanager {
            common,
            daily_limit,
            spanish,
            reply_shape,
        } => {
            let config = AdManagerConfig {
                users: common.users,
                daily_limit,
                locale: if spanish { Locale::Es } else { Locale::En },
                reply_shape: match reply_shape {
                    Shape::Status => ReplyShape::Status,
                    Shape::Seed => ReplyShape::Seed,
                },
                behaviour: common.behaviour(),
                port: common.port,
                ..AdManagerConfig::default()
            };
            let sim = AdManagerSim::start(config).await?;
            println!("ADManager Plus simulator at {}", sim.url());
            println!(
                "domain {}; authtoken {} (technician {})",
                sim.config().domain,
                sim.config().auth_token,
                sim.config().technician
            );
            tokio::signal::ctrl_c().await?;
        }
        Vendor::Inhouse { common, rate_limit } => {
            let config = InhouseConfig {
                users: common.users,
                rate_limit,
                behaviour: common.behaviour(),
                port: common.port,
                ..InhouseConfig::default()
            };
            let sim = InhouseSim::start(config).await?;
            println!("Acme Directory simulator at {}", sim.url());
            for key in &sim.config().keys {
                println!(
                    "API key {} (service account {}; scopes {})",
                    key.key,
                    key.account,
                    key.scopes.join(", ")
                );
            }
            tokio::signal::ctrl_c().await?;
        }
    }
    Ok(())
}
