//! What a template may not do, found in its parsed form before any row is rendered, so that `check` reports
//! it once with its file and line instead of once per row (or never, for a branch no row takes):
//! the functions that read the world instead of the row (`now`, `get_random`, `get_env`), and
//! `{% include %}`, `{% extends %}` and `{% import %}` — each template is one file; and values that can grow
//! without bound before a byte is written to the capped output (see [`accumulators`]).

use tera::ast::{Expr, ExprVal, FunctionCall, Node};

use super::functions::IMPURE;

/// One thing refused: the word to find its line by, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Finding {
    pub word: &'static str,
    pub message: String,
}

/// Every finding in a template's nodes (macro bodies included), each once.
pub(super) fn audit(ast: &[Node]) -> Vec<Finding> {
    let mut findings = Vec::new();
    nodes(ast, &mut findings);
    accumulators(ast, &mut findings);
    let mut unique: Vec<Finding> = Vec::new();
    for finding in findings {
        if !unique.contains(&finding) {
            unique.push(finding);
        }
    }
    unique
}

fn nodes(ast: &[Node], out: &mut Vec<Finding>) {
    for node in ast {
        match node {
            Node::VariableBlock(_, e) => expr(e, out),
            Node::MacroDefinition(_, def, _) => {
                def.args.values().flatten().for_each(|e| expr(e, out));
                nodes(&def.body, out);
            }
            Node::Extends(..) => out.push(unsupported("extends")),
            Node::Include(..) => out.push(unsupported("include")),
            Node::ImportMacro(..) => out.push(Finding {
                word: "import",
                message:
                    "`{% import %}` is not supported: define macros in the template that calls them (self::name())"
                        .into(),
            }),
            Node::Set(_, set) => expr(&set.value, out),
            Node::FilterSection(_, section, _) => {
                call_args(&section.filter, out);
                nodes(&section.body, out);
            }
            Node::Block(_, block, _) => nodes(&block.body, out),
            Node::Forloop(_, f, _) => {
                expr(&f.container, out);
                nodes(&f.body, out);
                nodes(f.empty_body.as_deref().unwrap_or_default(), out);
            }
            Node::If(i, _) => {
                for (_, condition, body) in &i.conditions {
                    expr(condition, out);
                    nodes(body, out);
                }
                nodes(i.otherwise.as_ref().map_or(&[][..], |(_, body)| body), out);
            }
            Node::Super | Node::Text(_) | Node::Raw(..) | Node::Break(_) | Node::Continue(_) | Node::Comment(..) => {}
        }
    }
}

/// The most times a value built with `set` may be the size of what it is built from (`a ~ a` is twice `a`;
/// eleven `set`s of sixteen copies each are 16¹¹ times, before a byte reaches the capped output).
pub const MAX_GROWTH: u64 = 64;

/// Values that can grow without bound before anything is written:
/// - a `set_global` that builds on a value carried from one loop iteration to the next (a `set_global`
///   variable, or a `set` built from one): `{% set_global s = s ~ s %}` doubles forty times in a loop;
/// - a `set` (or `set_global`) whose value can be more than [`MAX_GROWTH`] times the row values it starts
///   from, counting the variables it reads as often as it reads them, through earlier `set`s.
fn accumulators(ast: &[Node], out: &mut Vec<Finding>) {
    let mut sets = Vec::new();
    all_sets(ast, &mut sets);
    let mut carried: Vec<&str> = sets.iter().filter(|(_, _, global)| *global).map(|(key, ..)| *key).collect();
    loop {
        let before = carried.len();
        for (key, value, global) in &sets {
            let mut read = Vec::new();
            idents(value, &mut read);
            if !global && !carried.contains(key) && read.iter().any(|n| carried.contains(n)) {
                carried.push(key);
            }
        }
        if carried.len() == before {
            break;
        }
    }
    let mut growth: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    for (key, value, global) in &sets {
        let mut read = Vec::new();
        idents(value, &mut read);
        if *global && let Some(name) = read.iter().find(|name| carried.contains(name)) {
            out.push(Finding {
                word: "set_global",
                message: format!(
                    "`{{% set_global {key} = … %}}` builds on `{name}`, which carries a set_global value: a value \
                     carried from one loop iteration to the next can grow without bound; compute it from the row \
                     instead"
                ),
            });
            continue;
        }
        let times = read.iter().map(|n| growth.get(n).copied().unwrap_or(1)).fold(0u64, u64::saturating_add);
        if times > MAX_GROWTH {
            out.push(Finding {
                word: if *global { "set_global" } else { "set" },
                message: format!(
                    "`{{% set {key} = … %}}` can be {times} times the size of the row values it is built from \
                     (at most {MAX_GROWTH}): values built from values with `~` or lists grow without bound"
                ),
            });
        }
        let entry = growth.entry(key).or_insert(1);
        *entry = (*entry).max(times.max(1));
    }
}

/// Every `set` and `set_global` (key, value, global) in document order, macro bodies included.
fn all_sets<'a>(ast: &'a [Node], out: &mut Vec<(&'a str, &'a Expr, bool)>) {
    for node in ast {
        match node {
            Node::Set(_, set) => out.push((set.key.as_str(), &set.value, set.global)),
            Node::MacroDefinition(_, def, _) => all_sets(&def.body, out),
            Node::FilterSection(_, section, _) => all_sets(&section.body, out),
            Node::Block(_, block, _) => all_sets(&block.body, out),
            Node::Forloop(_, f, _) => {
                all_sets(&f.body, out);
                all_sets(f.empty_body.as_deref().unwrap_or_default(), out);
            }
            Node::If(i, _) => {
                i.conditions.iter().for_each(|(_, _, body)| all_sets(body, out));
                all_sets(i.otherwise.as_ref().map_or(&[][..], |(_, body)| body), out);
            }
            _ => {}
        }
    }
}

/// The root names of the variables an expression reads (`s` of `s.len` or `s[0]`).
fn idents<'a>(e: &'a Expr, out: &mut Vec<&'a str>) {
    ident_values(&e.val, out);
    e.filters.iter().flat_map(|f| f.args.values()).for_each(|a| idents(a, out));
}

fn ident_values<'a>(v: &'a ExprVal, out: &mut Vec<&'a str>) {
    match v {
        ExprVal::Ident(name) => out.push(name.split(['.', '[']).next().unwrap_or(name)),
        ExprVal::Math(m) => [&m.lhs, &m.rhs].into_iter().for_each(|e| idents(e, out)),
        ExprVal::Logic(l) => [&l.lhs, &l.rhs].into_iter().for_each(|e| idents(e, out)),
        ExprVal::In(i) => [&i.lhs, &i.rhs].into_iter().for_each(|e| idents(e, out)),
        ExprVal::Test(t) => {
            out.push(t.ident.split(['.', '[']).next().unwrap_or(&t.ident));
            t.args.iter().for_each(|e| idents(e, out));
        }
        ExprVal::MacroCall(m) => m.args.values().for_each(|e| idents(e, out)),
        ExprVal::FunctionCall(call) => call.args.values().for_each(|e| idents(e, out)),
        ExprVal::Array(items) => items.iter().for_each(|e| idents(e, out)),
        ExprVal::StringConcat(c) => c.values.iter().for_each(|v| ident_values(v, out)),
        ExprVal::String(_) | ExprVal::Int(_) | ExprVal::Float(_) | ExprVal::Bool(_) => {}
    }
}

fn unsupported(tag: &'static str) -> Finding {
    Finding { word: tag, message: format!("`{{% {tag} %}}` is not supported: each template is one file") }
}

fn expr(e: &Expr, out: &mut Vec<Finding>) {
    value(&e.val, out);
    e.filters.iter().for_each(|f| call_args(f, out));
}

fn call_args(call: &FunctionCall, out: &mut Vec<Finding>) {
    call.args.values().for_each(|e| expr(e, out));
}

fn value(v: &ExprVal, out: &mut Vec<Finding>) {
    match v {
        ExprVal::Math(m) => {
            expr(&m.lhs, out);
            expr(&m.rhs, out);
        }
        ExprVal::Logic(l) => {
            expr(&l.lhs, out);
            expr(&l.rhs, out);
        }
        ExprVal::In(i) => {
            expr(&i.lhs, out);
            expr(&i.rhs, out);
        }
        ExprVal::Test(t) => t.args.iter().for_each(|e| expr(e, out)),
        ExprVal::MacroCall(m) => m.args.values().for_each(|e| expr(e, out)),
        ExprVal::FunctionCall(call) => {
            if let Some((word, why)) = IMPURE.iter().find(|(name, _)| *name == call.name) {
                out.push(Finding {
                    word,
                    message: format!("`{word}()` {why}: templates are pure functions of the row"),
                });
            }
            call_args(call, out);
        }
        ExprVal::Array(items) => items.iter().for_each(|e| expr(e, out)),
        ExprVal::StringConcat(c) => c.values.iter().for_each(|v| value(v, out)),
        ExprVal::String(_) | ExprVal::Int(_) | ExprVal::Float(_) | ExprVal::Bool(_) | ExprVal::Ident(_) => {}
    }
}
