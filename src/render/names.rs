//! The variables a template reads that must come from outside it (a CSV column, `mailshot`, a job value),
//! found in its parsed form, so that a misspelt column is reported once per template, with its line, as soon
//! as the CSV's header is known — not once per row, not only in the first template rendered, and also in a
//! branch no row takes.
//!
//! Only reads that Tera refuses when the name is missing count, so a template Tera would render is never
//! refused here: `{% if x %}`, `x and y`, `not x`, `x is defined` and `x | default(value=…)` accept a missing
//! `x` (Tera's `eval_as_bool` and `default` special cases), and inside an `if` whose condition tests `x` that
//! way, `x` may be missing too (the branch is how the template copes with it). A name the template defines
//! anywhere (`set`,
//! `set_global`, a loop variable, a macro argument, `loop`) is taken as defined wherever it is read: a read
//! before its `set` is left to the runtime error. Only the root of a path counts (`user` of `user.name`).

use tera::ast::{Expr, ExprVal, FunctionCall, LogicExpr, LogicOperator, Node};

/// Names Tera itself defines.
const TERA_NAMES: [&str; 2] = ["loop", "__tera_context"];

/// The outside names `ast` reads where a missing one is an error, each once, in the order first read.
pub(super) fn required(ast: &[Node]) -> Vec<&str> {
    let mut defined: Vec<&str> = TERA_NAMES.to_vec();
    definitions(ast, &mut defined);
    let mut reads = Vec::new();
    nodes(ast, &mut reads);
    let mut out: Vec<&str> = Vec::new();
    for name in reads {
        if !defined.contains(&name) && !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// Every name the template binds, wherever it binds it.
fn definitions<'a>(ast: &'a [Node], out: &mut Vec<&'a str>) {
    for node in ast {
        match node {
            Node::Set(_, set) => out.push(&set.key),
            Node::MacroDefinition(_, def, _) => {
                out.extend(def.args.keys().map(String::as_str));
                definitions(&def.body, out);
            }
            Node::Forloop(_, f, _) => {
                out.extend(f.key.as_deref());
                out.push(&f.value);
                definitions(&f.body, out);
                definitions(f.empty_body.as_deref().unwrap_or_default(), out);
            }
            Node::FilterSection(_, section, _) => definitions(&section.body, out),
            Node::Block(_, block, _) => definitions(&block.body, out),
            Node::If(i, _) => {
                i.conditions.iter().for_each(|(_, _, body)| definitions(body, out));
                definitions(i.otherwise.as_ref().map_or(&[][..], |(_, body)| body), out);
            }
            _ => {}
        }
    }
}

fn nodes<'a>(ast: &'a [Node], out: &mut Vec<&'a str>) {
    for node in ast {
        match node {
            Node::VariableBlock(_, e) => expr(e, out),
            Node::MacroDefinition(_, def, _) => {
                def.args.values().flatten().for_each(|e| expr(e, out));
                nodes(&def.body, out);
            }
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
                let (mut guards, mut inside) = (Vec::new(), Vec::new());
                for (_, condition, body) in &i.conditions {
                    guards_of(condition, &mut guards);
                    condition_expr(condition, &mut inside);
                    nodes(body, &mut inside);
                }
                nodes(i.otherwise.as_ref().map_or(&[][..], |(_, body)| body), &mut inside);
                out.extend(inside.into_iter().filter(|name| !guards.contains(name)));
            }
            _ => {}
        }
    }
}

/// The names a condition tests for presence (`x`, `not x`, `x is defined`, as operands of `and`/`or`):
/// inside that `if` (every branch, and the rest of the condition), the template expects them to be missing
/// at times, as in `{% if x is defined and x != "" %}{{ x }}{% endif %}`.
fn guards_of<'a>(e: &'a Expr, out: &mut Vec<&'a str>) {
    match &e.val {
        ExprVal::Ident(name) => out.push(root(name)),
        ExprVal::Test(t) => out.push(root(&t.ident)),
        ExprVal::Logic(l) if matches!(l.operator, LogicOperator::And | LogicOperator::Or) => {
            guards_of(&l.lhs, out);
            guards_of(&l.rhs, out);
        }
        _ => {}
    }
}

/// An expression Tera evaluates as a condition: a bare variable (filters and all) may be missing.
fn condition_expr<'a>(e: &'a Expr, out: &mut Vec<&'a str>) {
    match &e.val {
        ExprVal::Ident(_) => {}
        ExprVal::Logic(l) => logic(l, out),
        _ => expr(e, out),
    }
}

/// `and`/`or` take their operands as conditions; comparisons take values.
fn logic<'a>(l: &'a LogicExpr, out: &mut Vec<&'a str>) {
    let operands = [&l.lhs, &l.rhs].into_iter();
    match l.operator {
        LogicOperator::And | LogicOperator::Or => operands.for_each(|e| condition_expr(e, out)),
        _ => operands.for_each(|e| expr(e, out)),
    }
}

/// An expression Tera evaluates for its value: a missing variable is an error unless negated or defaulted
/// (then the filters' arguments are evaluated only if it is present, or are `default`'s fallback).
fn expr<'a>(e: &'a Expr, out: &mut Vec<&'a str>) {
    match &e.val {
        ExprVal::Ident(_) if e.negated || e.has_default_filter() => return,
        ExprVal::Ident(name) => out.push(root(name)),
        ExprVal::Logic(l) => logic(l, out),
        v => value(v, out),
    }
    e.filters.iter().for_each(|f| call_args(f, out));
}

fn value<'a>(v: &'a ExprVal, out: &mut Vec<&'a str>) {
    match v {
        ExprVal::Math(m) => [&m.lhs, &m.rhs].into_iter().for_each(|e| expr(e, out)),
        ExprVal::In(i) => [&i.lhs, &i.rhs].into_iter().for_each(|e| expr(e, out)),
        // `x is defined`: the tested variable may be missing; the test's arguments may not.
        ExprVal::Test(t) => t.args.iter().for_each(|e| expr(e, out)),
        ExprVal::MacroCall(m) => m.args.values().for_each(|e| expr(e, out)),
        ExprVal::FunctionCall(call) => call_args(call, out),
        ExprVal::Array(items) => items.iter().for_each(|e| expr(e, out)),
        ExprVal::StringConcat(c) => c.values.iter().for_each(|v| match v {
            ExprVal::Ident(name) => out.push(root(name)),
            other => value(other, out),
        }),
        ExprVal::Logic(_)
        | ExprVal::Ident(_)
        | ExprVal::String(_)
        | ExprVal::Int(_)
        | ExprVal::Float(_)
        | ExprVal::Bool(_) => {}
    }
}

fn call_args<'a>(call: &'a FunctionCall, out: &mut Vec<&'a str>) {
    call.args.values().for_each(|e| expr(e, out));
}

/// `user` of `user.name`, `items` of `items[0]`.
fn root(name: &str) -> &str {
    name.split(['.', '[']).next().unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use tera::Tera;

    use super::required;

    fn names(text: &str) -> Vec<String> {
        let mut tera = Tera::default();
        tera.add_raw_template("t", text).unwrap();
        required(&tera.get_template("t").unwrap().ast).into_iter().map(str::to_owned).collect()
    }

    #[test]
    fn reads_that_fail_when_missing_are_found_once_each_in_order() {
        let text = "{{ nme }} {{ city | upper }} {{ nme }}\n{% for x in items %}{{ x.a ~ suffix }}{% endfor %}\
                    {{ \"a\" ~ tail }}{{ n + 1 }}{% if a == b %}{% endif %}{{ self::m(v=arg) }}\
                    {{ user.name }}{{ list[0] }}{{ d | default(value=fallback) }}{% set s = src %}\
                    {{ x | replace(from=old, to=\"\") }}";
        let found = names(text);
        let expected = ["nme", "city", "items", "suffix", "tail", "n", "a", "b", "arg", "user", "list", "src", "old"];
        assert_eq!(found, expected);
    }

    #[test]
    fn reads_tera_accepts_when_missing_are_not_required() {
        let text = "{% if vip %}{% endif %}{% if vip and not gold or x | lower %}{% endif %}\
                    {% if opt is defined %}{% endif %}{{ not flag }}{{ nick | default(value=\"\") }}";
        assert_eq!(names(text), Vec::<String>::new());
    }

    #[test]
    fn reads_inside_an_if_that_tests_the_name_are_not_required() {
        let text = "{% if opt is defined and opt != \"\" %}{{ opt }}{% elif vip %}{{ vip | upper }}{% else %}{{ opt }}\
                    {% endif %}{% if not nick %}{% else %}{{ nick }}{{ other }}{% endif %}{{ opt }}";
        assert_eq!(names(text), ["other", "opt"]);
    }

    #[test]
    fn names_the_template_binds_are_not_required() {
        let text = "{% macro m(a, b=1) %}{{ a }}{{ b }}{{ inner }}{% endmacro %}{{ later }}{% set later = 1 %}\
                    {% for k, v in map %}{{ k }}{{ v }}{{ loop.index }}{% set_global g = v %}{% endfor %}{{ g }}";
        assert_eq!(names(text), ["inner", "map"]);
    }
}
