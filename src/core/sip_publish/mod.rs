//! Presence from the phones themselves: SIP PUBLISH (RFC 3903) of `Event: presence` with a
//! PIDF/RPID or XPIDF body sets the publishing endpoint's `CustomPresence` state.
//!
//! The FFI (`crate::ffi::sip`) hands each PUBLISH that res_pjsip identified and authenticated
//! to [`Service::handle`] as a [`Request`] and sends the [`Response`] it gets back; it
//! implements [`Target`] over the store. This room holds the rest:
//! - which names an endpoint may set (`config`: its own id by default, plus grants),
//! - the body's meaning (`body`: the parser; `table::value_of`: the admin's mapping),
//! - RFC 3903's entity tags, refresh / modify / remove and the expiry limits (here),
//! - several publications of one name (`table`): the most recently modified active one
//!   sets it; when it ends, the next one does; when none is left, the name reverts to what it
//!   held before the first. A new initial PUBLISH from the same device (endpoint and contact,
//!   or source address when there is no Contact) replaces that device's earlier ones.
//!
//! A publication's state is written as a timed state (`t(<seconds left>)`): the store's
//! expiry reverts it when the publication runs out, also after a restart and on every server
//! of a cluster, with no timer of this room. Just before the store reverts a name, the
//! expiry thread asks [`Service::expiring`], which writes the next publication instead if
//! one is left.

pub mod body;
pub mod config;
pub mod stats;
pub mod table;

pub use body::{Basic, BodyError, Format, Published};
pub use config::SipPublishConfig;
pub use stats::{Outcome, PublishStats, Refused};

use crate::core::shown;
use crate::core::store::name_for_write;
use crate::core::PROVIDER_PREFIX;
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};
use table::{value_of, Applied, Publication, Table};

/// What a publication does to the presence store (implemented by the FFI over the store).
pub trait Target {
    /// Wall-clock time, unix milliseconds.
    fn now_ms(&self) -> u64;
    /// Writes `value` (a timed value) to `CustomPresence:<name>`, recording `endpoint` as the
    /// source. The error is the store's refusal, as text for the log.
    fn set(&self, name: &[u8], value: &[u8], endpoint: &[u8]) -> Result<(), String>;
    /// The value `CustomPresence:<name>` holds now, as stored.
    fn stored(&self, name: &[u8]) -> Option<Vec<u8>>;
    /// Ends the timed state of `name` now (it reverts as at its expiry), if the name still
    /// holds exactly `value`.
    fn end(&self, name: &[u8], value: &[u8], endpoint: &[u8]);
}

/// A PUBLISH as res_pjsip delivered it, its fields borrowed from the message.
#[derive(Clone, Copy, Debug, Default)]
pub struct Request<'a> {
    /// The id of the endpoint Asterisk identified (and authenticated, where it has auth).
    pub endpoint: &'a [u8],
    /// The `Event` header's value (`presence;id=1`); empty when there is none.
    pub event: &'a [u8],
    /// Whether the Request-URI is a sip: or sips: URI, and its user part.
    pub sip_uri: bool,
    pub user: &'a [u8],
    pub if_match: Option<&'a [u8]>,
    pub expires: Option<&'a [u8]>,
    pub content_type: Option<&'a [u8]>,
    /// `None`: no body.
    pub body: Option<&'a [u8]>,
    /// The Contact header, else the source address (for `presencestate publications`).
    pub contact: &'a [u8],
}

/// The answer to a PUBLISH.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub etag: Option<String>,
    pub expires: Option<u32>,
    pub min_expires: Option<u32>,
    /// For a 415: the content types accepted.
    pub accept: Option<&'static str>,
    /// What to log (WARNING for a refusal, NOTICE for a 412 or 423, which phones cause in
    /// normal operation after a restart or with a short Expires).
    pub log: Option<(LogLevel, String)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Notice,
    Warning,
}

/// One row of `presencestate publications`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub publication: Publication,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// Whether it is the one setting its name now.
    pub winning: bool,
}

/// `presencestate publications`: one line per publication, `*` marking the one in force.
pub fn render_list(listed: &[Listed]) -> String {
    let mut out = format!(
        "  {:<24} {:<16} {:<16} {:>7} {:<28} {}\n",
        "Name", "Endpoint", "ETag", "Expires", "Contact", "State it sets"
    );
    for row in listed {
        let p = &row.publication;
        out += &format!(
            "{} {:<24} {:<16} {:<16} {:>6}s {:<28} {}\n",
            if row.winning { '*' } else { ' ' },
            format!("{PROVIDER_PREFIX}{}", shown(&p.name)),
            shown(&p.endpoint),
            p.etag,
            row.expires_in,
            shown(&p.contact),
            shown(&p.value)
        );
    }
    out += &format!(
        "{} SIP PUBLISH presence publications ('*': the one setting its name)\n",
        listed.len()
    );
    out
}

/// Whether an `Event` header value names the presence package (`presence`, any case,
/// parameters ignored).
pub fn is_presence_event(event: &[u8]) -> bool {
    event
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii()
        .eq_ignore_ascii_case(b"presence")
}

/// Every publication and the settings of `[sip_publish]`.
#[derive(Default)]
pub struct Service {
    /// `None`: the defaults, holding no memory (before the first configure, after release).
    config: RwLock<Option<SipPublishConfig>>,
    table: Mutex<Table>,
    pub stats: PublishStats,
}

fn refused(status: u16, reason: Refused, log: LogLevel, text: String) -> (Response, Outcome) {
    (
        Response {
            status,
            log: Some((log, text)),
            ..Response::default()
        },
        Outcome::Refused(reason),
    )
}

impl Service {
    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn configure(&self, config: &SipPublishConfig) {
        *self.config.write().unwrap_or_else(PoisonError::into_inner) = Some(config.clone());
    }

    /// Back to the defaults, freeing the settings' memory (a static's heap memory is lost
    /// when the module is unmapped at unload).
    pub fn release(&self) {
        *self.config.write().unwrap_or_else(PoisonError::into_inner) = None;
    }

    pub fn config(&self) -> SipPublishConfig {
        self.config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .unwrap_or_default()
    }

    /// Answers one PUBLISH; `None` when it is not for the presence package (res_pjsip_pubsub
    /// then answers it, as without this module). Counted in [`Service::stats`].
    pub fn handle(&self, target: &dyn Target, request: &Request<'_>) -> Option<Response> {
        if !is_presence_event(request.event) {
            return None;
        }
        let config = self.config.read().unwrap_or_else(PoisonError::into_inner);
        let config = config.as_ref().filter(|config| config.enabled)?;
        let (response, outcome) = self.answer(target, config, request);
        self.stats.count(outcome);
        Some(response)
    }

    fn answer(
        &self,
        target: &dyn Target,
        config: &SipPublishConfig,
        request: &Request<'_>,
    ) -> (Response, Outcome) {
        let endpoint = shown(request.endpoint);
        let expires = match request.expires {
            None => config.default_expires,
            Some(text) => match std::str::from_utf8(text.trim_ascii())
                .ok()
                .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
                .map(|t| t.parse::<u64>().unwrap_or(u64::MAX))
            {
                Some(seconds) => u32::try_from(seconds).unwrap_or(u32::MAX),
                None => {
                    return refused(
                        400,
                        Refused::BadRequest,
                        LogLevel::Warning,
                        format!(
                            "PUBLISH from endpoint {endpoint}: Expires '{}' is not a number; \
                             refused (400), nothing changed",
                            shown(text)
                        ),
                    )
                }
            },
        };
        if expires != 0 && expires < config.min_expires {
            let (mut response, outcome) = refused(
                423,
                Refused::TooBrief,
                LogLevel::Notice,
                format!(
                    "PUBLISH from endpoint {endpoint}: Expires {expires} is below min_expires \
                     {}; answered 423 with Min-Expires",
                    config.min_expires
                ),
            );
            response.min_expires = Some(config.min_expires);
            return (response, outcome);
        }
        let expires = expires.min(config.max_expires);
        let mut table = self.table();
        let now = target.now_ms();
        let expired = table.purge(now);
        self.stats.count_expired(expired);
        match request.if_match {
            Some(etag) => self.update(target, config, &mut table, request, etag, expires, now),
            None => self.create(target, config, &mut table, request, expires, now),
        }
    }

    /// The state and stored value a body sets, or the refusal.
    fn state_of(
        config: &SipPublishConfig,
        request: &Request<'_>,
        body: &[u8],
    ) -> Result<(crate::core::state::PresenceState, Vec<u8>), (Response, Outcome)> {
        let endpoint = shown(request.endpoint);
        if body.len() > config.max_body {
            return Err(refused(
                413,
                Refused::TooLarge,
                LogLevel::Warning,
                format!(
                    "PUBLISH from endpoint {endpoint}: the body is {} bytes, more than max_body \
                     {}; refused (413), nothing changed",
                    body.len(),
                    config.max_body
                ),
            ));
        }
        let content_type = request.content_type.unwrap_or_default();
        let Some(format) = Format::of(content_type) else {
            let (mut response, outcome) = refused(
                415,
                Refused::UnsupportedType,
                LogLevel::Warning,
                format!(
                    "PUBLISH from endpoint {endpoint}: Content-Type '{}' is not {}; refused \
                     (415), nothing changed",
                    shown(content_type),
                    Format::ACCEPTED
                ),
            );
            response.accept = Some(Format::ACCEPTED);
            return Err((response, outcome));
        };
        let published = body::parse(format, body).map_err(|error| {
            refused(
                400,
                Refused::BadBody,
                LogLevel::Warning,
                format!(
                    "PUBLISH from endpoint {endpoint}: {error}; refused (400), nothing changed"
                ),
            )
        })?;
        value_of(&published, &config.states).ok_or_else(|| {
            refused(
                488,
                Refused::NoState,
                LogLevel::Warning,
                format!(
                    "PUBLISH from endpoint {endpoint}: the body maps to no presence state (no \
                     <basic> status and no activity in [sip_publish_activities]: {published:?}); \
                     refused (488), nothing changed"
                ),
            )
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn create(
        &self,
        target: &dyn Target,
        config: &SipPublishConfig,
        table: &mut Table,
        request: &Request<'_>,
        expires: u32,
        now: u64,
    ) -> (Response, Outcome) {
        let endpoint = shown(request.endpoint);
        let Some(body) = request.body else {
            return refused(
                400,
                Refused::BadRequest,
                LogLevel::Warning,
                format!(
                    "PUBLISH from endpoint {endpoint} has neither a body nor SIP-If-Match; \
                     refused (400), nothing changed"
                ),
            );
        };
        if expires == 0 {
            return refused(
                400,
                Refused::BadRequest,
                LogLevel::Warning,
                format!(
                    "PUBLISH from endpoint {endpoint} has Expires 0 but no SIP-If-Match (nothing \
                     to remove); refused (400), nothing changed"
                ),
            );
        }
        if !request.sip_uri {
            return refused(
                416,
                Refused::BadRequest,
                LogLevel::Warning,
                format!(
                    "PUBLISH from endpoint {endpoint}: the Request-URI is not a sip: or sips: \
                     URI; refused (416), nothing changed"
                ),
            );
        }
        let name = config.name.expand(request.user, request.endpoint);
        if !config.may_publish(request.endpoint, request.user) {
            return refused(
                403,
                Refused::Forbidden,
                LogLevel::Warning,
                format!(
                    "PUBLISH from endpoint {endpoint} for '{}' ({PROVIDER_PREFIX}{}): the \
                     endpoint may publish only its own presence (or the users [sip_publish] \
                     grant gives it); refused (403), nothing changed",
                    shown(request.user),
                    shown(&name)
                ),
            );
        }
        let provider = [PROVIDER_PREFIX.as_bytes(), &name].concat();
        if let Err(error) = name_for_write(&provider) {
            return refused(
                400,
                Refused::BadRequest,
                LogLevel::Warning,
                format!(
                    "PUBLISH from endpoint {endpoint}: it would set {}: {error}; refused (400), \
                     nothing changed",
                    shown(&provider)
                ),
            );
        }
        let (state, value) = match Self::state_of(config, request, body) {
            Ok(found) => found,
            Err(refusal) => return refusal,
        };
        // The same device (endpoint and contact) publishing anew replaces what it published.
        table.remove_device(request.endpoint, &name, request.contact);
        let etag = table.new_etag();
        let modified = table.next_modified();
        let publication = Publication {
            etag: etag.clone(),
            endpoint: request.endpoint.to_vec(),
            name: name.clone(),
            contact: request.contact.to_vec(),
            expires_at_ms: now.saturating_add(u64::from(expires) * 1000),
            modified,
            state,
            value,
        };
        if let Some(evicted) = table.insert(publication) {
            // Should the store refuse this, the evicted one's state stays until it expires.
            let _ = self.apply(target, table, &evicted.name, &evicted.endpoint, now);
        }
        if let Err(error) = self.apply(target, table, &name, request.endpoint, now) {
            table.remove(&etag);
            return Self::store_refused(request, &name, error);
        }
        (Self::ok(etag, expires), Outcome::Initial)
    }

    #[allow(clippy::too_many_arguments)]
    fn update(
        &self,
        target: &dyn Target,
        config: &SipPublishConfig,
        table: &mut Table,
        request: &Request<'_>,
        etag: &[u8],
        expires: u32,
        now: u64,
    ) -> (Response, Outcome) {
        let endpoint = shown(request.endpoint);
        let etag = etag.trim_ascii();
        let Some(old) = table.get(etag).cloned() else {
            return refused(
                412,
                Refused::UnknownEtag,
                LogLevel::Notice,
                format!(
                    "PUBLISH from endpoint {endpoint}: no publication has entity tag '{}' (it \
                     expired, or Asterisk restarted); answered 412",
                    shown(etag)
                ),
            );
        };
        if old.endpoint != request.endpoint {
            return refused(
                412,
                Refused::UnknownEtag,
                LogLevel::Warning,
                format!(
                    "PUBLISH from endpoint {endpoint} names the entity tag of a publication of \
                     endpoint {} ({PROVIDER_PREFIX}{}); answered 412, nothing changed",
                    shown(&old.endpoint),
                    shown(&old.name)
                ),
            );
        }
        let mut new = old.clone();
        let outcome = if expires == 0 {
            Outcome::Removed
        } else if let Some(body) = request.body {
            match Self::state_of(config, request, body) {
                Ok((state, value)) => {
                    new.state = state;
                    new.value = value;
                    new.modified = table.next_modified();
                    Outcome::Modified
                }
                Err(refusal) => return refusal,
            }
        } else {
            Outcome::Refreshed
        };
        table.remove(&old.etag);
        let response = if expires == 0 {
            let etag = table.new_etag();
            Self::ok(etag, 0)
        } else {
            new.etag = table.new_etag();
            new.expires_at_ms = now.saturating_add(u64::from(expires) * 1000);
            if !request.contact.is_empty() {
                new.contact = request.contact.to_vec();
            }
            table.insert(new.clone());
            Self::ok(new.etag.clone(), expires)
        };
        if let Err(error) = self.apply(target, table, &old.name, request.endpoint, now) {
            // Nothing changed: the publication stays as it was.
            table.remove(&new.etag);
            table.insert(old.clone());
            return Self::store_refused(request, &old.name, error);
        }
        (response, outcome)
    }

    fn ok(etag: String, expires: u32) -> Response {
        Response {
            status: 200,
            etag: Some(etag),
            expires: Some(expires),
            ..Response::default()
        }
    }

    fn store_refused(request: &Request<'_>, name: &[u8], error: String) -> (Response, Outcome) {
        refused(
            500,
            Refused::StoreRefused,
            LogLevel::Warning,
            format!(
                "PUBLISH from endpoint {}: {PROVIDER_PREFIX}{} could not be set: {error}; \
                 answered 500, nothing changed",
                shown(request.endpoint),
                shown(name)
            ),
        )
    }

    /// Makes `name` hold what its publications say now: the winner's state, timed to end
    /// with it, or, when none is left, what it held before the first (if it still holds the
    /// last publication's state: a write from elsewhere since then stays).
    fn apply(
        &self,
        target: &dyn Target,
        table: &mut Table,
        name: &[u8],
        endpoint: &[u8],
        now: u64,
    ) -> Result<(), String> {
        match table.winner(name, now) {
            Some(winner) => {
                let unchanged = table.applied.get(name).is_some_and(|applied| {
                    applied.etag == winner.etag
                        && applied.expires_at_ms == winner.expires_at_ms
                        && target.stored(name).as_deref() == Some(&applied.text[..])
                });
                if unchanged {
                    return Ok(());
                }
                let applied = Applied {
                    etag: winner.etag.clone(),
                    expires_at_ms: winner.expires_at_ms,
                    text: winner.timed_value(now),
                };
                target.set(name, &applied.text, &winner.endpoint)?;
                table.applied.insert(name.to_vec(), applied);
            }
            None => {
                if let Some(applied) = table.applied.remove(name) {
                    target.end(name, &applied.text, endpoint);
                }
            }
        }
        Ok(())
    }

    /// The store is about to revert `name`, whose timed state has expired: if the name's
    /// state is a publication's and another publication of it is still active, that one is
    /// written instead (so the store finds a newer timed state and leaves it). Called by the
    /// expiry thread before the store's own expiry.
    pub fn expiring(&self, target: &dyn Target, name: &[u8]) {
        let mut table = self.table();
        if !table.has_name(name) {
            return;
        }
        let now = target.now_ms();
        let expired = table.purge(now);
        self.stats.count_expired(expired);
        let Some(applied) = table.applied.get(name).cloned() else {
            return;
        };
        if target.stored(name).as_deref() != Some(&applied.text[..]) {
            // Someone else wrote the name since: its expiry is not ours.
            table.applied.remove(name);
            return;
        }
        match table.winner(name, now).map(|w| w.endpoint.clone()) {
            Some(endpoint) => {
                if self
                    .apply(target, &mut table, name, &endpoint, now)
                    .is_err()
                {
                    // The store keeps the expired state and retries; so do we, then.
                    table.applied.insert(name.to_vec(), applied);
                }
            }
            // The store's revert restores what the name held before the first publication.
            None => {
                table.applied.remove(name);
            }
        }
    }

    /// Every publication held, for `presencestate publications`.
    pub fn list(&self, now_ms: u64) -> Vec<Listed> {
        let table = self.table();
        table
            .all()
            .into_iter()
            .filter(|p| p.is_active(now_ms))
            .map(|p| Listed {
                winning: table
                    .winner(&p.name, now_ms)
                    .is_some_and(|w| w.etag == p.etag),
                expires_in: p.expires_at_ms.saturating_sub(now_ms).div_ceil(1000),
                publication: p.clone(),
            })
            .collect()
    }

    /// Forgets every publication (at unload; the states they set stay, timed, and revert).
    pub fn clear(&self) {
        *self.table() = Table::default();
    }
}

#[cfg(test)]
mod tests;
