//! What a template may not do, found in its parsed form before any row is rendered, so that `check` reports
//! it once with its file and line instead of once per row (or never, for a branch no row takes):
//! the functions that read the world instead of the row (`now`, `get_random`, `get_env`), and
//! `{% include %}`, `{% extends %}` and `{% import %}` — each template is one file.

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
