//! The simulator's messages, in English or Spanish: a localised deployment answers
//! in its own language, so clients must decide by codes and `status` only.
//! Messages carry HTML entities (`&amp;`), as ADManager's do.

/// The language of the simulated server's messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Locale {
    /// English.
    #[default]
    En,
    /// Spanish, as seen in a production deployment.
    Es,
}

/// The texts of one locale.
pub(crate) struct Texts {
    pub reset_ok: &'static str,
    /// The success text of the vendor's documented sample (seed 003).
    pub modified_ok: &'static str,
    pub unlock_ok: &'static str,
    pub bad_token: &'static str,
    pub bad_login: &'static str,
    pub missing: &'static str,
    pub bad_request: &'static str,
    pub bad_domain: &'static str,
    pub not_found: &'static str,
    pub no_attribute: &'static str,
    pub quota: &'static str,
    pub policy: &'static str,
}

const EN: Texts = Texts {
    reset_ok: "Password reset successful.",
    modified_ok: "Successfully modified.",
    unlock_ok: "Account unlocked successfully.",
    bad_token: "Authentication failed: the AuthToken is invalid or has expired.",
    bad_login: "Invalid login name &amp; password combination.",
    missing: "Mandatory parameter missing:",
    bad_request: "Can&#39;t process the request:",
    bad_domain: "The domain is not configured in ADManager Plus:",
    not_found: "No such user in the domain:",
    no_attribute: "No search attribute (sAMAccountName, userPrincipalName, ...) given.",
    quota: "The daily API limit of this license has been reached &amp; no more objects can be modified today.",
    policy: "The password does not meet the password policy requirements. Check the minimum password length, password complexity &amp; password history requirements.",
};

const ES: Texts = Texts {
    reset_ok: "Contraseña restablecida correctamente.",
    // Not seen on a real server: a text no client knows unless told.
    modified_ok: "Modificado correctamente.",
    unlock_ok: "Cuenta desbloqueada correctamente.",
    bad_token: "Error de autenticación: el AuthToken no es válido o ha caducado.",
    bad_login: "Combinación de nombre de inicio de sesión &amp; contraseña no válida.",
    missing: "Falta un parámetro obligatorio:",
    bad_request: "No se puede procesar la solicitud:",
    bad_domain: "El dominio no está configurado en ADManager Plus:",
    not_found: "No existe el usuario en el dominio:",
    no_attribute: "No se indicó ningún atributo de búsqueda (sAMAccountName, userPrincipalName, ...).",
    quota: "Se ha alcanzado el límite diario de la API de esta licencia &amp; hoy no se pueden modificar más objetos.",
    policy: "La contraseña no cumple los requisitos de la directiva de contraseñas. Compruebe la longitud mínima, la complejidad &amp; el historial de contraseñas.",
};

impl Locale {
    /// The texts of this locale.
    pub(crate) fn texts(self) -> &'static Texts {
        match self {
            Locale::En => &EN,
            Locale::Es => &ES,
        }
    }
}

/// A value for a message, HTML-escaped as the server does.
pub(crate) fn quoted(value: &str) -> String {
    html_escape::encode_quoted_attribute(value).into_owned()
}
