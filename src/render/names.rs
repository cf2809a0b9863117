//! The variables a template reads that must come from outside it (a CSV column, `mailshot`, a job value),
//! found in its parsed form, so that a misspelt column is reported once per template, with its line, as soon
//! as the CSV's header is known — not once per row, not only in the first template rendered, and also in a
//! branch no row takes.
//!
//! Only reads that Tera refuses when the name is missing count, so a template Tera would render is never
//! refused here: `{% if x %}`, `x and y`, `not x`, `x is defined` and `x | default(value=…)` accept a missing
//! `x` (Tera's `eval_as_bool` and `default` special cases), and inside an `if` whose condition tests `x` that
//! way, `x` may be missing too (the branch is how the template copes with it). A name the template defines
//! anywhere (`set`, `set_global`, a loop variable, a macro argument, `loop`) is taken as defined wherever it
//! is read: a read before its `set` is left to the runtime error. Only the root of a path counts (`user` of
//! `user.name`). One pass, sets for lookups: a template may be megabytes of `{{ x }}`.

use std::collections::{HashMap, HashSet};

use tera::ast::{Expr, ExprVal, FunctionCall, LogicExpr, LogicOperator, Node};

/// Names Tera itself defines.
const TERA_NAMES: [&str; 2] = ["loop", "__tera_context"];

/// The outside names `ast` reads where a missing one is an error, each once, in the order first read.
pub(super) fn required(ast: &[Node]) -> Vec<&str> {
    let mut defined: HashSet<&str> = TERA_NAMES.into_iter().collect();
    definitions(ast, &mut defined);
    let mut walk = Walk { defined, guards: Vec::new(), guarded: HashMap::new(), seen: HashSet::new(), out: Vec::new() };
    walk.nodes(ast);
    walk.out
}

/// Every name the template binds, wherever it binds it.
fn definitions<'a>(ast: &'a [Node], out: &mut HashSet<&'a str>) {
    for node in ast {
        match node {
            Node::Set(_, set) => {
                out.insert(&set.key);
            }
            Node::MacroDefinition(_, def, _) => {
                out.extend(def.args.keys().map(String::as_str));
                definitions(&def.body, out);
            }
            Node::Forloop(_, f, _) => {
                out.extend(f.key.as_deref());
                out.insert(&f.value);
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

/// The walk over a template: what it defines, the names the enclosing `if`s test, and what was found.
struct Walk<'a> {
    defined: HashSet<&'a str>,
    /// A stack: each `if` pushes the names its conditions test and pops them when its walk ends.
    guards: Vec<&'a str>,
    /// How many times each name is on `guards` (looked up for every read).
    guarded: HashMap<&'a str, usize>,
    seen: HashSet<&'a str>,
    out: Vec<&'a str>,
}

impl<'a> Walk<'a> {
    fn read(&mut self, name: &'a str) {
        let name = root(name);
        if !self.defined.contains(name) && !self.guarded.contains_key(name) && self.seen.insert(name) {
            self.out.push(name);
        }
    }

    fn nodes(&mut self, ast: &'a [Node]) {
        for node in ast {
            match node {
                Node::VariableBlock(_, e) => self.expr(e),
                Node::MacroDefinition(_, def, _) => {
                    def.args.values().flatten().for_each(|e| self.expr(e));
                    self.nodes(&def.body);
                }
                Node::Set(_, set) => self.expr(&set.value),
                Node::FilterSection(_, section, _) => {
                    self.call_args(&section.filter);
                    self.nodes(&section.body);
                }
                Node::Block(_, block, _) => self.nodes(&block.body),
                Node::Forloop(_, f, _) => {
                    self.expr(&f.container);
                    self.nodes(&f.body);
                    self.nodes(f.empty_body.as_deref().unwrap_or_default());
                }
                Node::If(i, _) => {
                    let depth = self.guards.len();
                    i.conditions.iter().for_each(|(_, condition, _)| guards_of(condition, &mut self.guards));
                    self.guards[depth..].iter().for_each(|g| *self.guarded.entry(g).or_default() += 1);
                    for (_, condition, body) in &i.conditions {
                        self.condition(condition);
                        self.nodes(body);
                    }
                    self.nodes(i.otherwise.as_ref().map_or(&[][..], |(_, body)| body));
                    for g in self.guards.drain(depth..) {
                        let left = self.guarded.get_mut(g).map(|n| {
                            *n -= 1;
                            *n
                        });
                        if left == Some(0) {
                            self.guarded.remove(g);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// An expression Tera evaluates as a condition: a bare variable (filters and all) may be missing.
    fn condition(&mut self, e: &'a Expr) {
        match &e.val {
            ExprVal::Ident(_) => {}
            ExprVal::Logic(l) => self.logic(l),
            _ => self.expr(e),
        }
    }

    /// `and`/`or` take their operands as conditions; comparisons take values.
    fn logic(&mut self, l: &'a LogicExpr) {
        match l.operator {
            LogicOperator::And | LogicOperator::Or => [&l.lhs, &l.rhs].into_iter().for_each(|e| self.condition(e)),
            _ => [&l.lhs, &l.rhs].into_iter().for_each(|e| self.expr(e)),
        }
    }

    /// An expression Tera evaluates for its value: a missing variable is an error unless negated or
    /// defaulted (then the filters' arguments are evaluated only if it is present, or are `default`'s fallback).
    fn expr(&mut self, e: &'a Expr) {
        match &e.val {
            ExprVal::Ident(_) if e.negated || e.has_default_filter() => return,
            ExprVal::Ident(name) => self.read(name),
            ExprVal::Logic(l) => self.logic(l),
            v => self.value(v),
        }
        e.filters.iter().for_each(|f| self.call_args(f));
    }

    fn value(&mut self, v: &'a ExprVal) {
        match v {
            ExprVal::Math(m) => [&m.lhs, &m.rhs].into_iter().for_each(|e| self.expr(e)),
            ExprVal::In(i) => [&i.lhs, &i.rhs].into_iter().for_each(|e| self.expr(e)),
            // `x is defined`: the tested variable may be missing; the test's arguments may not.
            ExprVal::Test(t) => t.args.iter().for_each(|e| self.expr(e)),
            ExprVal::MacroCall(m) => m.args.values().for_each(|e| self.expr(e)),
            ExprVal::FunctionCall(call) => self.call_args(call),
            ExprVal::Array(items) => items.iter().for_each(|e| self.expr(e)),
            ExprVal::StringConcat(c) => c.values.iter().for_each(|v| match v {
                ExprVal::Ident(name) => self.read(name),
                other => self.value(other),
            }),
            ExprVal::Logic(_)
            | ExprVal::Ident(_)
            | ExprVal::String(_)
            | ExprVal::Int(_)
            | ExprVal::Float(_)
            | ExprVal::Bool(_) => {}
        }
    }

    fn call_args(&mut self, call: &'a FunctionCall) {
        call.args.values().for_each(|e| self.expr(e));
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
