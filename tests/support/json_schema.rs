//! The `--json` contract's checker: the `<!-- schema: NAME -->` tables of docs/json-output.md,
//! and a check of real output against them (every documented field present with its type, no
//! undocumented field). Shared by the tests that run the commands.
use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

const DOC: &str = include_str!("../../docs/json-output.md");

#[derive(Debug, Clone)]
pub enum Ty {
    Integer,
    Number,
    Str,
    Boolean,
    Object,
    Enum(Vec<String>),
    Nullable(Box<Ty>),
    Array(Box<Ty>),
    Union(Vec<Ty>),
    Named(String),
}

pub fn parse_ty(s: &str) -> Ty {
    let s = s.trim();
    if let Some(inner) = s.strip_suffix('?') {
        return Ty::Nullable(Box::new(parse_ty(inner)));
    }
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return Ty::Array(Box::new(parse_ty(inner)));
    }
    if s.contains('|') {
        return Ty::Union(s.split('|').map(parse_ty).collect());
    }
    if let Some(values) = s.strip_prefix("enum(").and_then(|r| r.strip_suffix(')')) {
        return Ty::Enum(values.split(',').map(|v| v.trim().to_owned()).collect());
    }
    match s {
        "integer" => Ty::Integer,
        "number" => Ty::Number,
        "string" => Ty::Str,
        "boolean" => Ty::Boolean,
        "object" => Ty::Object,
        name => Ty::Named(name.to_owned()),
    }
}

/// A table's cells, split at the pipes that are not escaped (`\|` is a union's bar).
fn cells(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = line.trim().trim_matches('|').chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                out.last_mut().unwrap().push('|');
                chars.next();
            }
            '|' => out.push(String::new()),
            c => out.last_mut().unwrap().push(c),
        }
    }
    out.into_iter()
        .map(|c| c.trim().trim_matches('`').to_owned())
        .collect()
}

/// Each `<!-- schema: NAME -->` table of the page: NAME → [(field, type)].
fn schema() -> HashMap<String, Vec<(String, Ty)>> {
    let mut types = HashMap::new();
    let mut lines = DOC.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(name) = line
            .trim()
            .strip_prefix("<!-- schema: ")
            .and_then(|r| r.strip_suffix(" -->"))
        else {
            continue;
        };
        let mut fields = Vec::new();
        for row in lines.by_ref().skip(2) {
            if !row.starts_with('|') {
                break;
            }
            let c = cells(row);
            fields.push((c[0].clone(), parse_ty(&c[1])));
        }
        assert!(!fields.is_empty(), "schema {name} has no fields");
        types.insert(name.to_owned(), fields);
    }
    types
}

pub struct Checker {
    pub types: HashMap<String, Vec<(String, Ty)>>,
    pub roots_checked: BTreeSet<String>,
}

impl Checker {
    pub fn check(&self, v: &Value, ty: &Ty, path: &str) -> Result<(), String> {
        let bad = |want: &str| Err(format!("{path}: expected {want}, found {v}"));
        match ty {
            Ty::Integer if v.is_i64() || v.is_u64() => Ok(()),
            Ty::Integer => bad("an integer"),
            Ty::Number if v.is_number() => Ok(()),
            Ty::Number => bad("a number"),
            Ty::Str if v.is_string() => Ok(()),
            Ty::Str => bad("a string"),
            Ty::Boolean if v.is_boolean() => Ok(()),
            Ty::Boolean => bad("a boolean"),
            Ty::Object if v.is_object() => Ok(()),
            Ty::Object => bad("an object"),
            Ty::Enum(values) => match v.as_str() {
                Some(s) if values.iter().any(|x| x == s) => Ok(()),
                _ => bad(&format!("one of {values:?}")),
            },
            Ty::Nullable(_) if v.is_null() => Ok(()),
            Ty::Nullable(inner) => self.check(v, inner, path),
            Ty::Array(inner) => match v.as_array() {
                Some(items) => items
                    .iter()
                    .enumerate()
                    .try_for_each(|(i, item)| self.check(item, inner, &format!("{path}[{i}]"))),
                None => bad("an array"),
            },
            Ty::Union(alternatives) => {
                let errors: Vec<String> = alternatives
                    .iter()
                    .filter_map(|t| self.check(v, t, path).err())
                    .collect();
                if errors.len() < alternatives.len() {
                    Ok(())
                } else {
                    Err(errors.join(" / "))
                }
            }
            Ty::Named(name) => {
                let fields = self
                    .types
                    .get(name)
                    .unwrap_or_else(|| panic!("{path}: type {name} is not documented"));
                let Some(object) = v.as_object() else {
                    return bad(&format!("a {name} object"));
                };
                for (field, ty) in fields {
                    let value = object
                        .get(field)
                        .ok_or_else(|| format!("{path}: {name}.{field} is missing"))?;
                    self.check(value, ty, &format!("{path}.{field}"))?;
                }
                match object.keys().find(|k| !fields.iter().any(|(f, _)| f == *k)) {
                    Some(extra) => Err(format!("{path}: {name} has undocumented field {extra}")),
                    None => Ok(()),
                }
            }
        }
    }

    /// Checks a whole document against the page's table for `root`.
    pub fn document(&mut self, root: &str, v: &Value) {
        if let Err(e) = self.check(v, &Ty::Named(root.into()), root) {
            panic!("`{root}` output does not match docs/json-output.md: {e}\n{v:#}");
        }
        self.roots_checked.insert(root.to_owned());
    }
}

pub fn checker() -> Checker {
    Checker {
        types: schema(),
        roots_checked: BTreeSet::new(),
    }
}
