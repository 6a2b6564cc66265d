//! A service principal: an Entra ID application signing in with a client secret or a
//! certificate, from the environment (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, then
//! `AZURE_CLIENT_SECRET` or `AZURE_CLIENT_CERTIFICATE_PATH`, as the Azure SDKs read them) or
//! from the configuration (`service_principal` with a secret file or a certificate file).
//!
//! Files are read on every use and must be private to this user. The secret, the key and the
//! signed assertion never appear in an error or a log line.

use std::path::PathBuf;

use crate::context::Context;
use crate::error::Error;
use crate::files;
use crate::identity::{Credential, Identity};
use crate::secret::Secret;
use crate::token::certificate;
use crate::token::entra::{self, Grant};
use crate::token::{self, AadToken, Detected, Detection, Scope, TokenSource};

const HEADLINE: &str = "Entra ID cannot be reached for the service principal";
const ADVICE: &str = "check the network path to AZURE_AUTHORITY_HOST (default login.microsoftonline.com) and HTTPS_PROXY/NO_PROXY";
const REFUSED: &str =
    "check the client id, the tenant id and the credential in the app registration";
/// Secret and certificate files are small.
const MAX_FILE: u64 = 64 * 1024;

#[derive(Debug)]
enum Proof {
    /// `AZURE_CLIENT_SECRET`'s value.
    Secret(Secret),
    SecretFile(PathBuf),
    Certificate {
        path: PathBuf,
        send_chain: bool,
    },
}

#[derive(Debug)]
pub struct ServicePrincipal {
    authority: String,
    tenant: String,
    client_id: String,
    proof: Proof,
}

pub fn detect(ctx: &Context, identity: &Identity, scope: Scope) -> Result<Detection, Error> {
    let authority = entra::authority(ctx);
    match (scope, identity) {
        (
            Scope::Named,
            Identity::ServicePrincipal {
                tenant_id,
                client_id,
                credential,
            },
        ) => {
            let proof = match credential {
                Credential::SecretFile(p) => Proof::SecretFile(p.clone()),
                Credential::CertificateFile(p) => Proof::Certificate {
                    path: p.clone(),
                    send_chain: send_chain(ctx),
                },
            };
            return Ok(Detection::Here(Detected::new(
                ServicePrincipal {
                    authority,
                    tenant: tenant_id.clone(),
                    client_id: client_id.clone(),
                    proof,
                },
                "the configuration names this service principal",
            )));
        }
        (Scope::Any, _) => {}
        _ => {
            return Ok(Detection::NotHere(format!(
                "the configuration names the {identity}"
            )));
        }
    }
    let env = &ctx.env;
    let secret = env.get("AZURE_CLIENT_SECRET");
    let certificate = env.get("AZURE_CLIENT_CERTIFICATE_PATH");
    if secret.is_none() && certificate.is_none() {
        return Ok(Detection::NotHere(
            "neither AZURE_CLIENT_SECRET nor AZURE_CLIENT_CERTIFICATE_PATH is set".into(),
        ));
    }
    let name = if secret.is_some() {
        "AZURE_CLIENT_SECRET"
    } else {
        "AZURE_CLIENT_CERTIFICATE_PATH"
    };
    let (Some(tenant), Some(client_id)) = (env.get("AZURE_TENANT_ID"), env.get("AZURE_CLIENT_ID"))
    else {
        return Err(Error::Environment {
            name,
            why:
                "it is set, but a service principal also needs AZURE_TENANT_ID and AZURE_CLIENT_ID"
                    .into(),
        });
    };
    let proof = match (secret, certificate) {
        // The secret wins when both are set, as in every Azure SDK.
        (Some(s), _) => Proof::Secret(Secret::new(s)),
        (None, Some(path)) => {
            if env.get("AZURE_CLIENT_CERTIFICATE_PASSWORD").is_some() {
                return Err(Error::Environment {
                    name: "AZURE_CLIENT_CERTIFICATE_PASSWORD",
                    why: "PKCS#12 certificates are not supported; convert to one PEM file with the certificate and its unencrypted key (`openssl pkcs12 -in cert.pfx -nodes -out cert.pem`), readable only by you".into(),
                });
            }
            Proof::Certificate {
                path: path.into(),
                send_chain: send_chain(ctx),
            }
        }
        (None, None) => return Err(Error::Internal("service principal without a credential")),
    };
    Ok(Detection::Here(Detected::new(
        ServicePrincipal {
            authority,
            tenant: tenant.into(),
            client_id: client_id.into(),
            proof,
        },
        format!("AZURE_TENANT_ID, AZURE_CLIENT_ID and {name} are set"),
    )))
}

/// `AZURE_CLIENT_SEND_CERTIFICATE_CHAIN` is `1` or `true`.
fn send_chain(ctx: &Context) -> bool {
    ctx.env
        .get("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN")
        .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

impl TokenSource for ServicePrincipal {
    fn name(&self) -> &'static str {
        match self.proof {
            Proof::Secret(_) | Proof::SecretFile(_) => {
                "Entra ID (service principal, client secret)"
            }
            Proof::Certificate { .. } => "Entra ID (service principal, certificate)",
        }
    }

    fn headline(&self) -> &'static str {
        HEADLINE
    }

    fn advice(&self) -> &'static str {
        ADVICE
    }

    fn endpoint(&self) -> String {
        entra::token_url(&self.authority, &self.tenant)
    }

    fn fetch(&self, ctx: &Context, _identity: &Identity) -> Result<AadToken, Error> {
        let at = token::at(
            self,
            format!(
                "service principal {} (tenant {})",
                self.client_id, self.tenant
            ),
        );
        let grant = |credential| Grant {
            authority: &self.authority,
            tenant: &self.tenant,
            client_id: &self.client_id,
            credential,
        };
        match &self.proof {
            Proof::Secret(secret) => {
                entra::request(ctx, &at, &grant(entra::Credential::Secret(secret)), REFUSED)
            }
            Proof::SecretFile(path) => {
                let bytes = files::read_private(path, "the client secret file", MAX_FILE)
                    .map_err(|why| at.unusable(why))?;
                let text = String::from_utf8(bytes).map_err(|_| {
                    at.unusable(format!(
                        "the client secret file {} is not text",
                        path.display()
                    ))
                })?;
                let secret = Secret::new(text.trim());
                if secret.expose().is_empty() {
                    return Err(at.unusable(format!(
                        "the client secret file {} is empty",
                        path.display()
                    )));
                }
                entra::request(
                    ctx,
                    &at,
                    &grant(entra::Credential::Secret(&secret)),
                    REFUSED,
                )
            }
            Proof::Certificate { path, send_chain } => {
                let bytes = files::read_private(path, "the certificate file", MAX_FILE)
                    .map_err(|why| at.unusable(why))?;
                let signer = certificate::load(&bytes).map_err(|why| {
                    at.unusable(format!("the certificate file {}: {why}", path.display()))
                })?;
                let assertion = signer
                    .assertion(&self.client_id, &at.endpoint, ctx.now(), *send_chain)
                    .map_err(|why| at.unusable(why))?;
                entra::request(
                    ctx,
                    &at,
                    &grant(entra::Credential::Assertion(&assertion)),
                    REFUSED,
                )
            }
        }
    }
}
