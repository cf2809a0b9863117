//! How deep rendering a parsed template can go, macro calls included, and macros that can call themselves.
//!
//! Tera 1.x has no bound on macro recursion: a macro that calls itself renders until the stack overflows
//! (SIGABRT, exit 134, no file named). Tera offers no hook to count calls, so recursion is refused here,
//! statically: a macro that can reach itself through `self::` calls, directly or through other macros, is
//! an error naming it. Without recursion the depth is finite, and is computed: nesting of blocks and
//! expressions, plus the depth of each macro where it is called. Over [`MAX_DEPTH`] is refused too; every
//! thread that renders has at least 8 MiB of stack, enough for it many times over.

use std::collections::{BTreeMap, BTreeSet};

use tera::ast::{Expr, ExprVal, FunctionCall, MacroDefinition, Node};

/// The deepest a template may go: nested blocks and expressions, macro bodies counted where called.
pub const MAX_DEPTH: usize = 128;

/// The most macro calls one rendering of a template may make (forty macros each calling the next twice
/// would be 2⁴⁰, each doing nothing the message cap could see). A call inside a loop counts as
/// [`LOOP_TIMES`] calls, as often as loops enclose it: a macro per item of a list is fine, a macro that
/// calls a hundred others per item is not.
pub const MAX_CALLS: u64 = 1_000_000;

/// How many times a loop's body is taken to run, for counting calls (the `range` budget per message).
pub const LOOP_TIMES: u64 = super::functions::RANGE_MAX as u64;

/// A problem, with the word its line is found by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Problem {
    pub word: String,
    pub message: String,
}

/// Recursive macros, then (if there are none) a template deeper than [`MAX_DEPTH`].
pub(super) fn check(ast: &[Node]) -> Vec<Problem> {
    let macros: BTreeMap<&str, &MacroDefinition> = ast
        .iter()
        .filter_map(|n| if let Node::MacroDefinition(_, def, _) = n { Some((def.name.as_str(), def)) } else { None })
        .collect();
    let calls: BTreeMap<&str, BTreeSet<&str>> = macros.iter().map(|(name, def)| (*name, called(&def.body))).collect();
    let recursive: Vec<Problem> = macros
        .keys()
        .filter(|name| reaches(&calls, name))
        .map(|name| Problem {
            word: format!("macro {name}"),
            message: format!(
                "macro `{name}` can call itself (directly or through other macros): Tera cannot bound recursion, \
                 so it is not supported"
            ),
        })
        .collect();
    if !recursive.is_empty() {
        return recursive;
    }
    let depth = Depths::of(&macros, &calls).nodes(ast);
    if depth > MAX_DEPTH {
        let message = format!("the template nests {depth} levels deep, counting macro calls; at most {MAX_DEPTH}");
        return vec![Problem { word: String::new(), message }];
    }
    let mut problems = Vec::new();
    let top: Vec<Node> = ast.iter().filter(|n| !matches!(n, Node::MacroDefinition(..))).cloned().collect();
    let calls = calls_made(&top, &macros, &mut BTreeMap::new());
    if calls > MAX_CALLS {
        let message = format!("macros calling macros make {calls} calls in one message; at most {MAX_CALLS}");
        problems.push(Problem { word: "self::".into(), message });
    }
    nested_data_loops(ast, false, false, &mut problems);
    loops_outside_the_cap(ast, None, &mut problems);
    problems
}

/// Tera renders a macro's body and a `{% filter %}` section into a string of its own before anything reaches
/// the capped writer, so a loop there (100,000 × a 1 MB cell) is not held to the message cap: refused.
fn loops_outside_the_cap(nodes: &[Node], inside: Option<&str>, out: &mut Vec<Problem>) {
    for node in nodes {
        let (bodies, inside) = match node {
            Node::Forloop(_, f, _) if inside.is_some() => {
                let place = inside.unwrap_or_default();
                let message = format!(
                    "a loop (over `{}`) inside {place}: Tera builds that output in memory, outside the message cap; \
                     loop outside it",
                    f.value
                );
                out.push(Problem { word: format!("for {}", f.value), message });
                continue;
            }
            Node::MacroDefinition(..) => (node_bodies(node), Some("a macro")),
            Node::FilterSection(..) => (node_bodies(node), Some("a `{% filter %}` section")),
            _ => (node_bodies(node), inside),
        };
        bodies.into_iter().for_each(|body| loops_outside_the_cap(body, inside, out));
    }
}

/// The macro calls rendering `body` makes, each callee's own calls included (the call graph is acyclic),
/// a call inside a loop counted [`LOOP_TIMES`] times per enclosing loop.
fn calls_made<'a>(
    body: &[Node],
    macros: &BTreeMap<&'a str, &'a MacroDefinition>,
    memo: &mut BTreeMap<&'a str, u64>,
) -> u64 {
    let mut sites = Vec::new();
    call_sites(body, 1, &mut sites);
    let mut total = 0u64;
    for (name, times) in sites {
        let Some((&key, def)) = macros.get_key_value(name.as_str()) else { continue };
        let inner = match memo.get(key) {
            Some(&n) => n,
            None => {
                let n = calls_made(&def.body, macros, memo);
                memo.insert(key, n);
                n
            }
        };
        total = total.saturating_add(times.saturating_mul(inner.saturating_add(1)));
    }
    total
}

/// Each `self::` call in `nodes` with how many times it may run (`times`, multiplied by enclosing loops).
fn call_sites(nodes: &[Node], times: u64, out: &mut Vec<(String, u64)>) {
    for node in nodes {
        let mut calls = |e: &ExprVal| {
            if let ExprVal::MacroCall(call) = e
                && call.namespace == "self"
            {
                out.push((call.name.clone(), times));
            }
        };
        for e in node_exprs(node) {
            walk_expr(e, &mut calls);
        }
        let inner = if matches!(node, Node::Forloop(..)) { times.saturating_mul(LOOP_TIMES) } else { times };
        for body in node_bodies(node) {
            call_sites(body, inner, out);
        }
    }
}

/// A loop over data (a value from the row or built from it, not `range` or a literal list) may neither be
/// nested in another loop nor hold one: their lengths multiply (six loops over a 28-piece `split` are 5·10⁸
/// iterations writing nothing), and only `range` has an iteration budget.
fn nested_data_loops(nodes: &[Node], in_loop: bool, in_data_loop: bool, out: &mut Vec<Problem>) {
    for node in nodes {
        match node {
            Node::Forloop(_, f, _) => {
                let bounded = match &f.container.val {
                    ExprVal::FunctionCall(call) => call.name == "range",
                    ExprVal::Array(_) => true,
                    _ => false,
                };
                if in_data_loop || (!bounded && in_loop) {
                    let message = format!(
                        "the loop over `{}` is nested with a loop over a value from the row: their lengths multiply \
                         without bound; loop over one of them only, or over `range`",
                        f.value
                    );
                    out.push(Problem { word: format!("for {}", f.value), message });
                    continue;
                }
                for body in node_bodies(node) {
                    nested_data_loops(body, true, in_data_loop || !bounded, out);
                }
            }
            // A macro's body is checked where it is defined, as if at the top.
            Node::MacroDefinition(_, def, _) => nested_data_loops(&def.body, false, false, out),
            _ => node_bodies(node).into_iter().for_each(|body| nested_data_loops(body, in_loop, in_data_loop, out)),
        }
    }
}

/// Whether `start` can reach itself through calls (a walk over names, not the stack).
fn reaches(calls: &BTreeMap<&str, BTreeSet<&str>>, start: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut next: Vec<&str> = calls.get(start).into_iter().flatten().copied().collect();
    while let Some(name) = next.pop() {
        if name == start {
            return true;
        }
        if seen.insert(name) {
            next.extend(calls.get(name).into_iter().flatten());
        }
    }
    false
}

/// The `self::` macros a body calls.
fn called(body: &[Node]) -> BTreeSet<&str> {
    let mut names = BTreeSet::new();
    walk_nodes(body, &mut |e| {
        if let ExprVal::MacroCall(call) = e
            && call.namespace == "self"
        {
            names.insert(call.name.as_str());
        }
    });
    names
}

/// Every expression value in `nodes`, outermost first.
fn walk_nodes<'a>(nodes: &'a [Node], f: &mut impl FnMut(&'a ExprVal)) {
    for node in nodes {
        for e in node_exprs(node) {
            walk_expr(e, f);
        }
        for body in node_bodies(node) {
            walk_nodes(body, f);
        }
    }
}

fn walk_expr<'a>(e: &'a Expr, f: &mut impl FnMut(&'a ExprVal)) {
    f(&e.val);
    for inner in value_exprs(&e.val).into_iter().chain(e.filters.iter().flat_map(args)) {
        walk_expr(inner, f);
    }
}

/// The depth of each macro (callees first, so each body is measured once) and of any body.
struct Depths<'a> {
    macros: BTreeMap<&'a str, usize>,
}

impl<'a> Depths<'a> {
    /// Without recursion the call graph is acyclic: each macro is measured once all it calls are (Kahn).
    fn of(macros: &BTreeMap<&'a str, &'a MacroDefinition>, calls: &BTreeMap<&'a str, BTreeSet<&'a str>>) -> Self {
        let mut depths = Depths { macros: BTreeMap::new() };
        let defined = |c: &&&str| macros.contains_key(**c);
        let mut waiting: BTreeMap<&str, usize> =
            calls.iter().map(|(name, callees)| (*name, callees.iter().filter(defined).count())).collect();
        let mut callers: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (name, callees) in calls {
            for callee in callees.iter().filter(defined) {
                callers.entry(callee).or_default().push(name);
            }
        }
        let mut ready: Vec<&str> = waiting.iter().filter(|(_, n)| **n == 0).map(|(name, _)| *name).collect();
        while let Some(name) = ready.pop() {
            let depth = depths.nodes(&macros[name].body);
            depths.macros.insert(name, depth);
            for caller in callers.get(name).into_iter().flatten() {
                let left = waiting.get_mut(caller).expect("every caller is a macro");
                *left -= 1;
                if *left == 0 {
                    ready.push(caller);
                }
            }
        }
        depths
    }

    fn nodes(&self, nodes: &[Node]) -> usize {
        nodes.iter().map(|node| self.node(node)).max().unwrap_or(0)
    }

    fn node(&self, node: &Node) -> usize {
        if let Node::MacroDefinition(..) = node {
            return 0;
        }
        let exprs = node_exprs(node).into_iter().map(|e| self.expr(e));
        1 + exprs.chain(node_bodies(node).into_iter().map(|b| self.nodes(b))).max().unwrap_or(0)
    }

    fn expr(&self, e: &Expr) -> usize {
        let callee = match &e.val {
            ExprVal::MacroCall(call) if call.namespace == "self" => self.macros.get(call.name.as_str()).copied(),
            _ => None,
        };
        let inner = value_exprs(&e.val).into_iter().chain(e.filters.iter().flat_map(args)).map(|i| self.expr(i));
        1 + inner.chain(callee).max().unwrap_or(0)
    }
}

/// The expressions a node evaluates itself (not those in its bodies).
fn node_exprs(node: &Node) -> Vec<&Expr> {
    match node {
        Node::VariableBlock(_, e) => vec![e],
        Node::Set(_, set) => vec![&set.value],
        Node::FilterSection(_, section, _) => args(&section.filter).collect(),
        Node::Forloop(_, f, _) => vec![&f.container],
        Node::If(i, _) => i.conditions.iter().map(|(_, e, _)| e).collect(),
        Node::MacroDefinition(_, def, _) => def.args.values().flatten().collect(),
        _ => Vec::new(),
    }
}

/// The bodies a node renders.
fn node_bodies(node: &Node) -> Vec<&[Node]> {
    match node {
        Node::MacroDefinition(_, def, _) => vec![&def.body],
        Node::FilterSection(_, section, _) => vec![&section.body],
        Node::Block(_, block, _) => vec![&block.body],
        Node::Forloop(_, f, _) => [Some(&f.body[..]), f.empty_body.as_deref()].into_iter().flatten().collect(),
        Node::If(i, _) => {
            let branches = i.conditions.iter().map(|(_, _, body)| &body[..]);
            branches.chain(i.otherwise.as_ref().map(|(_, body)| &body[..])).collect()
        }
        _ => Vec::new(),
    }
}

/// The expressions directly inside a value.
fn value_exprs(v: &ExprVal) -> Vec<&Expr> {
    match v {
        ExprVal::Math(m) => vec![&m.lhs, &m.rhs],
        ExprVal::Logic(l) => vec![&l.lhs, &l.rhs],
        ExprVal::In(i) => vec![&i.lhs, &i.rhs],
        ExprVal::Test(t) => t.args.iter().collect(),
        ExprVal::MacroCall(m) => m.args.values().collect(),
        ExprVal::FunctionCall(call) => args(call).collect(),
        ExprVal::Array(items) => items.iter().collect(),
        _ => Vec::new(),
    }
}

fn args(call: &FunctionCall) -> impl Iterator<Item = &Expr> {
    call.args.values()
}

#[cfg(test)]
mod tests {
    use tera::Tera;

    use super::*;

    #[test]
    fn loops_over_data_may_not_nest_and_macro_fan_out_is_bounded() {
        let split = "{% set s = name | split(pat=\"\") %}";
        assert!(
            problems(&format!("{split}{{% for x in s %}}{{% for y in s %}}{{% endfor %}}{{% endfor %}}"))[0]
                .contains("nested with a loop over a value from the row")
        );
        assert!(
            !problems(&format!("{split}{{% for x in s %}}{{% for y in range(end=3) %}}{{% endfor %}}{{% endfor %}}"))
                .is_empty()
        );
        assert!(problems(&format!("{split}{{% for x in s %}}{{{{ x }}}}{{% endfor %}}")).is_empty());
        assert!(problems("{% for i in range(end=3) %}{% for j in [1, 2] %}{% endfor %}{% endfor %}").is_empty());
        let mut fan = String::new();
        for i in 0..20 {
            let body =
                if i < 19 { format!("{{{{ self::m{0}() }}}}{{{{ self::m{0}() }}}}", i + 1) } else { String::new() };
            fan.push_str(&format!("{{% macro m{i}() %}}{body}{{% endmacro %}}"));
        }
        fan.push_str("{{ self::m0() }}");
        assert!(problems(&fan)[0].contains("macros calling macros make"), "{:?}", problems(&fan));
        let per_item =
            "{% macro row(x) %}<li>{{ x }}</li>{% endmacro %}{% for x in items %}{{ self::row(x=x) }}{% endfor %}";
        assert!(problems(per_item).is_empty(), "a macro per item is fine: {:?}", problems(per_item));
        let heavy = "{% macro a() %}{{ self::b() }}{{ self::b() }}{% endmacro %}{% macro b() %}{% endmacro %}\
                     {% for i in range(end=100000) %}{% for j in range(end=100000) %}{{ self::a() }}{% endfor %}{% endfor %}";
        assert!(problems(heavy).iter().any(|p| p.contains("macros calling macros make")), "{:?}", problems(heavy));
    }

    fn problems(text: &str) -> Vec<String> {
        let mut tera = Tera::default();
        tera.add_raw_template("t", text).unwrap();
        check(&tera.get_template("t").unwrap().ast).into_iter().map(|p| p.message).collect()
    }

    #[test]
    fn recursive_macros_are_refused_by_name() {
        let direct = "{% macro f(n) %}{{ self::f(n=n) }}{% endmacro f %}{{ self::f(n=1) }}";
        assert_eq!(problems(direct).len(), 1);
        assert!(problems(direct)[0].starts_with("macro `f` can call itself"));
        let mutual = "{% macro a() %}{% if x %}{{ self::b() }}{% endif %}{% endmacro %}\
                      {% macro b() %}{{ 1 + self::a() | length }}{% endmacro %}\
                      {% macro c() %}{{ self::a() }}{% endmacro %}";
        let found = problems(mutual);
        assert_eq!(found.len(), 2, "a and b, not c: {found:?}");
        assert!(found[0].starts_with("macro `a`") && found[1].starts_with("macro `b`"), "{found:?}");
    }

    #[test]
    fn macros_that_do_not_recurse_are_fine() {
        let text = "{% macro a(x) %}<b>{{ x }}</b>{% endmacro %}{% macro b() %}{{ self::a(x=1) }}{{ self::a(x=2) }}\
                    {% endmacro %}{{ self::b() }}";
        assert!(problems(text).is_empty());
    }

    #[test]
    fn depth_counts_macro_bodies_where_they_are_called() {
        // Each macro nests 20 `if`s and calls the next: 8 macros deep is well over the limit.
        let mut text = String::new();
        for i in 0..8 {
            let call = if i < 7 { format!("{{{{ self::m{}() }}}}", i + 1) } else { "x".into() };
            text.push_str(&format!(
                "{{% macro m{i}() %}}{}{call}{}{{% endmacro %}}",
                "{% if y %}".repeat(20),
                "{% endif %}".repeat(20)
            ));
        }
        text.push_str("{{ self::m0() }}");
        let found = problems(&text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("levels deep, counting macro calls; at most 128"), "{found:?}");
        let shallow = "{% macro m() %}{% if y %}x{% endif %}{% endmacro %}{{ self::m() }}";
        assert!(problems(shallow).is_empty());
    }
}
