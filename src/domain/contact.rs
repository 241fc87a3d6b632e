//! The employer's contact person: a name and at least one of e-mail / phone.

use super::cpr;
use super::text;
use crate::contract::joborder as wire;
use crate::contract::rejection::{ErrorCode, Rejection};

/// An e-mail address that looks like one: one `@`, a non-empty local part and
/// a domain of non-empty labels with at least one dot, no white space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(field: &str, value: &str) -> Result<Email, Rejection> {
        let bad = |why: &str| {
            Rejection::new(
                ErrorCode::ContactEmail,
                // Not the value: a rejection's text is logged, and contact
                // details never are (section 12).
                format!("{field}: not an e-mail address ({why})"),
            )
        };
        // White space as Unicode and as the schema's `\s` read it: the byte
        // order mark is no letter of an address either.
        if value.chars().any(|c| c.is_whitespace() || c == '\u{feff}') {
            return Err(bad("contains white space"));
        }
        let mut parts = value.split('@');
        let (local, domain) = match (parts.next(), parts.next(), parts.next()) {
            (Some(local), Some(domain), None) => (local, domain),
            _ => return Err(bad("it needs exactly one @")),
        };
        if local.is_empty() {
            return Err(bad("nothing before the @"));
        }
        if !domain.contains('.') || domain.split('.').any(str::is_empty) {
            return Err(bad("the domain needs a dot between non-empty parts"));
        }
        Ok(Email(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A phone number: 8 digits (Danish), or `+` and 8–15 digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    pub fn parse(field: &str, value: &str) -> Result<Phone, Rejection> {
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        let ok = match value.strip_prefix('+') {
            Some(rest) => (8..=15).contains(&rest.len()) && digits(rest),
            None => value.len() == 8 && digits(value),
        };
        if !ok {
            return Err(Rejection::new(
                ErrorCode::ContactPhone,
                format!("{field}: not a phone number (8 digits, or + and 8 to 15 digits)"),
            ));
        }
        Ok(Phone(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A contact person with a name and at least one way to reach them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub name: String,
    pub email: Option<Email>,
    pub phone: Option<Phone>,
}

impl Contact {
    pub fn parse(field: &str, wire: &wire::Contact) -> Result<Contact, Rejection> {
        Contact::check_shape(field, wire)?;
        let name = match wire.name.as_deref() {
            Some(name) if !super::text::is_blank(name) => name,
            _ => {
                return Err(Rejection::new(
                    ErrorCode::ContactMissing,
                    format!("{field}.name: a contact person needs a name"),
                ))
            }
        };
        if wire.email.is_none() && wire.phone.is_none() {
            return Err(Rejection::new(
                ErrorCode::ContactMissing,
                format!("{field}: a contact person needs an e-mail address or a phone number"),
            ));
        }
        let email = wire
            .email
            .as_deref()
            .map(|e| Email::parse(&format!("{field}.email"), e))
            .transpose()?;
        let phone = wire
            .phone
            .as_deref()
            .map(|p| Phone::parse(&format!("{field}.phone"), p))
            .transpose()?;
        // An address or a number cannot be redacted without breaking it
        // (section 5.3), so one that holds a CPR number is refused here.
        for (what, value) in [("email", &wire.email), ("phone", &wire.phone)] {
            if value.as_deref().is_some_and(cpr::contains) {
                return Err(Rejection::beyond_schema(
                    ErrorCode::ContactCpr,
                    format!(
                        "{field}.{what}: contains a CPR number; a contact's {} must not carry one",
                        if what == "email" {
                            "e-mail address"
                        } else {
                            "phone number"
                        }
                    ),
                ));
            }
        }
        Ok(Contact {
            name: name.to_owned(),
            email,
            phone,
        })
    }

    /// The shape rules of a contact (`schema.invalid`): a name of at most
    /// 200 characters, an e-mail address of at most 254, and no NUL
    /// character in any of its texts (it cannot be stored) — judged before
    /// what an address or a number looks like (section 4.3).
    pub fn check_shape(field: &str, wire: &wire::Contact) -> Result<(), Rejection> {
        text::bounded_opt(&format!("{field}.name"), wire.name.as_deref(), NAME_MAX)?;
        text::bounded_opt(&format!("{field}.email"), wire.email.as_deref(), EMAIL_MAX)?;
        if let Some(phone) = &wire.phone {
            text::no_nul(&format!("{field}.phone"), phone)?;
        }
        Ok(())
    }
}

/// Longest contact name accepted, in characters.
pub const NAME_MAX: usize = 200;
/// Longest e-mail address accepted, in characters.
pub const EMAIL_MAX: usize = 254;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_that_look_like_addresses_pass() {
        for ok in [
            "a@b.dk",
            "jens.hansen@brondby.dk",
            "æøå@kommune.dk",
            "x@a.b.c",
        ] {
            assert!(Email::parse("e", ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn a_rejection_never_repeats_the_contact_details() {
        let e = Email::parse("data.contact.email", "kim hansen@example.dk").unwrap_err();
        assert_eq!(
            e.message,
            "data.contact.email: not an e-mail address (contains white space)"
        );
        let p = Phone::parse("data.contact.phone", "4321-2345").unwrap_err();
        assert!(!p.message.contains("4321"), "{}", p.message);
    }

    #[test]
    fn addresses_without_one_at_or_a_dotted_domain_fail() {
        for bad in [
            "a",
            "a@b",
            "a@@b.dk",
            "a@b@c.dk",
            "@b.dk",
            "a@.dk",
            "a@b.",
            "a@b..dk",
            "a b@c.dk",
            "",
            "a\u{feff}b@c.dk",
            "a@b\u{3000}.dk",
        ] {
            let err = Email::parse("data.contact.email", bad).unwrap_err();
            assert_eq!(err.code, ErrorCode::ContactEmail, "{bad}");
            assert!(err.message.starts_with("data.contact.email: "));
        }
    }

    #[test]
    fn phones_are_eight_digits_or_international() {
        for ok in ["12345678", "+4512345678", "+12345678", "+123456789012345"] {
            assert!(Phone::parse("p", ok).is_ok(), "{ok}");
        }
        for bad in [
            "1234567",
            "123456789",
            "+1234567",
            "+1234567890123456",
            "1234 5678",
            "+45-12345678",
            "",
        ] {
            assert_eq!(
                Phone::parse("p", bad).unwrap_err().code,
                ErrorCode::ContactPhone,
                "{bad}"
            );
        }
    }

    #[test]
    fn a_contact_needs_a_name_and_a_way_to_reach_them() {
        let contact =
            |name: Option<&str>, email: Option<&str>, phone: Option<&str>| wire::Contact {
                name: name.map(str::to_owned),
                email: email.map(str::to_owned),
                phone: phone.map(str::to_owned),
            };
        let code = |c: wire::Contact| Contact::parse("c", &c).map(|_| ()).map_err(|e| e.code);
        assert_eq!(code(contact(Some("Jens"), None, Some("12345678"))), Ok(()));
        assert_eq!(
            code(contact(None, Some("a@b.dk"), None)),
            Err(ErrorCode::ContactMissing)
        );
        assert_eq!(
            code(contact(Some("  "), Some("a@b.dk"), None)),
            Err(ErrorCode::ContactMissing)
        );
        assert_eq!(
            code(contact(Some("Jens"), None, None)),
            Err(ErrorCode::ContactMissing)
        );
    }

    #[test]
    fn a_nul_character_in_an_address_or_a_number_is_a_schema_fault() {
        let contact = |email: Option<&str>, phone: Option<&str>| wire::Contact {
            name: Some("Jens".into()),
            email: email.map(str::to_owned),
            phone: phone.map(str::to_owned),
        };
        let err = Contact::parse("data.contact", &contact(Some("a\0b@c.dk"), None)).unwrap_err();
        assert_eq!(err.code, ErrorCode::SchemaInvalid);
        assert!(
            err.message.starts_with("data.contact.email: "),
            "{}",
            err.message
        );
        let err =
            Contact::parse("data.contact", &contact(None, Some("1234\u{0}5678"))).unwrap_err();
        assert_eq!(err.code, ErrorCode::SchemaInvalid);
        assert!(
            err.message.starts_with("data.contact.phone: "),
            "{}",
            err.message
        );
    }
}
