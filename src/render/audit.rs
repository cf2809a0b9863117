//! What a template may not do, found in its parsed form before any row is rendered, so that `check` reports
//! it once with its file and line instead of once per row (or never, for a branch no row takes):
//! the functions that read the world instead of the row (`now`, `get_random`, `get_env`), and
//! `{% include %}`, `{% extends %}` and `{% import %}` — each template is one file; and a `set_global` that
//! builds on a `set_global` variable (`{% set_global s = s ~ s %}` in a loop doubles a string forty times
//! over: memory without bound, before a byte is written to the capped output).

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

/// `set_global`s whose value reads a variable that some `set_global` assigns: state carried from one loop
/// iteration into the next, which `~`, `replace` or arithmetic can grow without bound.
fn accumulators(ast: &[Node], out: &mut Vec<Finding>) {
    let mut sets = Vec::new();
    global_sets(ast, &mut sets);
    let targets: Vec<&str> = sets.iter().map(|(key, _)| *key).collect();
    for (key, value) in &sets {
        let mut read = Vec::new();
        idents(value, &mut read);
        if let Some(name) = read.iter().find(|name| targets.contains(name)) {
            out.push(Finding {
                word: "set_global",
                message: format!(
                    "`{{% set_global {key} = … %}}` builds on `{name}`, itself set with set_global: a value carried \
                     from one loop iteration to the next can grow without bound; compute it from the row instead"
                ),
            });
        }
    }
}

fn global_sets<'a>(ast: &'a [Node], out: &mut Vec<(&'a str, &'a Expr)>) {
    for node in ast {
        match node {
            Node::Set(_, set) if set.global => out.push((set.key.as_str(), &set.value)),
            Node::MacroDefinition(_, def, _) => global_sets(&def.body, out),
            Node::FilterSection(_, section, _) => global_sets(&section.body, out),
            Node::Block(_, block, _) => global_sets(&block.body, out),
            Node::Forloop(_, f, _) => {
                global_sets(&f.body, out);
                global_sets(f.empty_body.as_deref().unwrap_or_default(), out);
            }
            Node::If(i, _) => {
                i.conditions.iter().for_each(|(_, _, body)| global_sets(body, out));
                global_sets(i.otherwise.as_ref().map_or(&[][..], |(_, body)| body), out);
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
