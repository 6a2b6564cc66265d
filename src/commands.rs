//! One short function per command; [`run`] dispatches.
//!
//! Each command writes its reply to `out` in one piece when it is complete, so a failure never
//! leaves a partial line — except `doctor`, whose report is written line by line as each step
//! completes. Printing errors is `main`'s job.

use std::io::{Read, Write};

use crate::cache::Cache;
use crate::cli::Command;
use crate::clients::{self, Client};
use crate::configure::{self, Action};
use crate::context::Context;
use crate::error::Error;
use crate::{doctor, flow, hosts, kubelet, protocol};

/// Runs one command that needs the context.
pub fn run(
    command: &Command,
    ctx: &Context,
    input: impl Read,
    out: &mut dyn Write,
) -> Result<(), Error> {
    match command {
        Command::Get => get(ctx, input, out),
        Command::Store => store(ctx, input),
        Command::Erase => erase(ctx, input),
        Command::List => list(ctx, input, out),
        Command::Kubelet => kubelet(ctx, input, out),
        Command::Doctor { registry } => doctor(ctx, registry.as_deref(), out),
        Command::ConfigureKubelet { json, pod_identity } => {
            configure_kubelet(ctx, *json, *pod_identity, out)
        }
        Command::Configure {
            client,
            path,
            registries,
            action,
        } => configure(ctx, *client, path.as_deref(), registries, *action, out),
        Command::Version | Command::Help(_) => Ok(()),
    }
}

fn write_all(out: &mut dyn Write, bytes: &[u8]) -> Result<(), Error> {
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(Error::Stdout)
}

fn json_line(value: &impl serde::Serialize) -> Result<Vec<u8>, Error> {
    let mut line = serde_json::to_vec(value).map_err(|e| Error::Stdout(e.into()))?;
    line.push(b'\n');
    Ok(line)
}

/// Remembers a served registry's failure, for `doctor` (some clients hide the helper's error).
fn remember<T>(ctx: &Context, server: &str, result: Result<T, Error>) -> Result<T, Error> {
    if let Err(e) = &result
        && !matches!(e, Error::NotFound | Error::MissingServerUrl)
    {
        Cache::new(ctx).record_failure(&hosts::normalize(server), &e.to_string());
    }
    result
}

fn get(ctx: &Context, input: impl Read, out: &mut dyn Write) -> Result<(), Error> {
    let server = protocol::read_request(input)?;
    let grant = remember(ctx, &server, flow::get(ctx, &server))?;
    write_all(out, &protocol::reply(&server, &grant.token)?)
}

/// A login for a served registry is accepted and discarded (the identity is the source); one
/// for any other registry fails visibly, so that no password is lost in silence.
fn store(ctx: &Context, input: impl Read) -> Result<(), Error> {
    let text = protocol::read_request(input)?;
    let host = hosts::normalize(&protocol::parse_store(&text)?);
    if !ctx.config.serves(&host) {
        return Err(Error::StoreRefused { registry: host });
    }
    ctx.log.info(format_args!(
        "store: the login for {host} is not kept; this helper gets tokens from an Azure identity"
    ));
    Ok(())
}

fn erase(ctx: &Context, input: impl Read) -> Result<(), Error> {
    let server = protocol::read_request(input)?;
    let host = hosts::normalize(&server);
    if ctx.config.serves(&host) {
        let n = Cache::new(ctx).erase(&host);
        ctx.log.info(format_args!(
            "erase: removed {n} cached token(s) for {host}"
        ));
    }
    Ok(())
}

fn list(ctx: &Context, input: impl Read, out: &mut dyn Write) -> Result<(), Error> {
    protocol::drain(input);
    let map: serde_json::Map<String, serde_json::Value> = Cache::new(ctx)
        .registries()
        .into_iter()
        .map(|r| (r, protocol::TOKEN_USERNAME.into()))
        .collect();
    write_all(out, &json_line(&map)?)
}

fn kubelet(ctx: &Context, input: impl Read, out: &mut dyn Write) -> Result<(), Error> {
    let text = protocol::read_request(input)?;
    let request = kubelet::parse_request(&text)?;
    let image = &request.image;
    let key = kubelet::registry_of(image);
    let host = hosts::normalize(&key);
    let pod = if ctx.config.serves(&host) {
        let tenant = ctx
            .config
            .tenant
            .as_deref()
            .or_else(|| ctx.env.get("AZURE_TENANT_ID"));
        kubelet::pod_identity(&request, ctx.config.pod_policy(&host), &host, tenant)?
    } else {
        None
    };
    if let Some(identity) = &pod {
        ctx.log
            .debug(format_args!("kubelet: {image}: pulling as the {identity}"));
    }
    let chosen = pod.map(|identity| (identity, crate::identity::Reason::ServiceAccount));
    let line = match remember(ctx, &key, flow::get_as(ctx, &key, chosen)) {
        Ok(grant) => json_line(&kubelet::response_for(&key, &grant, ctx.now()))?,
        Err(Error::NotFound | Error::MissingServerUrl) => {
            ctx.log.debug(format_args!(
                "kubelet: {image}: registry {key} is not served"
            ));
            json_line(&kubelet::response_not_served())?
        }
        Err(e) => return Err(e),
    };
    write_all(out, &line)
}

fn doctor(ctx: &Context, registry: Option<&str>, out: &mut dyn Write) -> Result<(), Error> {
    if doctor::diagnose(ctx, registry, out) {
        Ok(())
    } else {
        Err(Error::DoctorFound)
    }
}

fn configure_kubelet(
    ctx: &Context,
    json: bool,
    pod_identity: bool,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let text = if json {
        let config = kubelet::provider_config_json(&ctx.config, pod_identity);
        let mut t = serde_json::to_string_pretty(&config).map_err(|e| Error::Stdout(e.into()))?;
        t.push('\n');
        t
    } else {
        kubelet::provider_config_yaml(&ctx.config, pod_identity)
    };
    write_all(out, text.as_bytes())
}

fn configure(
    ctx: &Context,
    client: Client,
    path: Option<&std::path::Path>,
    registries: &[String],
    action: Action,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let path = match path.map(ToOwned::to_owned) {
        Some(p) => p,
        None => clients::config_path(client, &ctx.env).ok_or_else(|| {
            Error::Usage(
                "no home directory to find the client configuration in; pass --config PATH".into(),
            )
        })?,
    };
    let outcome = configure::apply(&ctx.config, &path, registries, action)?;
    write_all(out, outcome.report().as_bytes())
}
