//! The documented schema of the settings a rule sees: the one list of field names that
//! the static checks ([`super::check`]), the sample records ([`super::sample`]) and the
//! "cannot fail" check ([`super::vacuous`]) agree on.
//!
//! Taken from Webex's "Read Push-to-Talk Settings for a Virtual Line" page (the
//! response properties and the example body): every field the API documents, nothing
//! else. The API adds fields over time, so a name that is not here is a warning at load
//! time, never an error by itself.

/// Top-level fields of the settings, as the API returns them.
pub(crate) const SETTINGS_FIELDS: &[&str] =
    &["allowAutoAnswer", "connectionType", "accessType", "members"];

/// Fields of one entry of `members`.
pub(crate) const MEMBER_FIELDS: &[&str] = &[
    "id",
    "lastName",
    "firstName",
    "displayName",
    "type",
    "email",
    "numbers",
];

/// Fields of one entry of a member's `numbers`.
pub(crate) const NUMBER_FIELDS: &[&str] =
    &["external", "extension", "routingPrefix", "esn", "primary"];

/// Fields of `line`, which the tool binds (not the API): the ID, then the line's
/// identity (`CONTRACT.md` §7; empty strings when unknown).
pub(crate) const LINE_FIELDS: [&str; 6] = [
    "id",
    "name",
    "location_id",
    "location_name",
    "phone_number",
    "extension",
];

/// Names CEL sees at the top level whatever the API returns: the documented settings
/// fields, then `line` and `vars`.
pub(crate) fn top_names() -> impl Iterator<Item = &'static str> + Clone {
    SETTINGS_FIELDS.iter().copied().chain(["line", "vars"])
}

/// Documented values of the enumerated settings, for the sample records.
pub(crate) const CONNECTION_TYPES: &[&str] = &["ONE_WAY", "TWO_WAY"];
/// See [`CONNECTION_TYPES`].
pub(crate) const ACCESS_TYPES: &[&str] = &["ALLOW_MEMBERS", "BLOCK_MEMBERS"];
