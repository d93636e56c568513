//! The rules language: boolean expressions over named features.
//!
//! ```text
//! expr    := or
//! or      := and ("or" and)*
//! and     := not ("and" not)*
//! not     := "not" not | compare
//! compare := sum (("==" | "!=" | "<" | "<=" | ">" | ">=") sum)?
//!          | sum "not"? "in" "[" literal ("," literal)* "]"
//! sum     := product (("+" | "-") product)*
//! product := unary (("*" | "/") unary)*
//! unary   := "-" unary | atom
//! atom    := number | "text" | true | false | feature.name | func "(" expr ("," expr)* ")" | "(" expr ")"
//! func    := min | max | abs
//! ```
//!
//! Three types: number, text and boolean; the compiler checks them, and every error carries the
//! byte offset it is about. A missing number is NaN: arithmetic keeps it, and every comparison
//! with it is false (so `x < 5` and `not x >= 5` differ when x is missing).
//!
//! Parentheses, function calls, `not` and minus signs nest at most [`NESTING_MAX`] deep.

use finpulse_state::features::{FeatureRef, FeatureRow, Num, Text, lookup};
use std::fmt;

/// How deep parentheses, function calls, `not` and minus signs may nest. Parsing, evaluating
/// and dropping a condition recurse once per level, and a ruleset file may be a megabyte: past
/// a few thousand levels the recursion would overflow the stack.
pub const NESTING_MAX: usize = 100;

/// A problem with a rule's expression, at a byte offset of its text.
#[derive(Debug, Clone, PartialEq)]
pub struct ExprError {
    /// Byte offset in the expression.
    pub at: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)
    }
}

fn err<T>(at: usize, message: impl Into<String>) -> Result<T, ExprError> {
    Err(ExprError { at, message: message.into() })
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    Ident(String),
    Op(&'static str),
    End,
}

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, ExprError> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'#' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            let start = i;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.' || b[i] == b'_') {
                i += 1;
            }
            if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
                i += 1;
                if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                    i += 1;
                }
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            }
            let text: String = src[start..i].chars().filter(|&c| c != '_').collect();
            match text.parse::<f64>() {
                Ok(v) => out.push((Tok::Num(v), start)),
                Err(_) => return err(start, format!("{:?} is not a number", &src[start..i])),
            }
        } else if c == b'"' || c == b'\'' {
            let start = i;
            i += 1;
            let from = i;
            while i < b.len() && b[i] != c {
                if b[i] == b'\n' {
                    return err(start, "text is not closed on its line");
                }
                i += 1;
            }
            if i >= b.len() {
                return err(start, "text is not closed");
            }
            out.push((Tok::Str(src[from..i].to_string()), start));
            i += 1;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
                i += 1;
            }
            out.push((Tok::Ident(src[start..i].to_string()), start));
        } else {
            let two = src.get(i..i + 2).unwrap_or("");
            let op = match two {
                "==" | "!=" | "<=" | ">=" => Some(two),
                _ => None,
            };
            let op: &'static str = match op {
                Some("==") => "==",
                Some("!=") => "!=",
                Some("<=") => "<=",
                Some(">=") => ">=",
                _ => match c {
                    b'<' => "<",
                    b'>' => ">",
                    b'+' => "+",
                    b'-' => "-",
                    b'*' => "*",
                    b'/' => "/",
                    b'(' => "(",
                    b')' => ")",
                    b'[' => "[",
                    b']' => "]",
                    b',' => ",",
                    b'=' => return err(i, "use == to compare"),
                    _ => {
                        let ch = src[i..].chars().next().unwrap_or('?');
                        return err(i, format!("unexpected character {ch:?}"));
                    }
                },
            };
            out.push((Tok::Op(op), i));
            i += op.len();
        }
    }
    out.push((Tok::End, src.len()));
    Ok(out)
}

/// A value's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// A number (f64).
    Number,
    /// Text.
    Text,
    /// True or false.
    Bool,
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Type::Number => "number",
            Type::Text => "text",
            Type::Bool => "boolean",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Arith {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Func {
    Min,
    Max,
    Abs,
}

/// A compiled, type-checked expression.
#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Num(f64),
    Bool(bool),
    Text(Box<str>),
    Feature(Num),
    TextFeature(Text),
    Neg(Box<Expr>),
    Arith(Arith, Box<Expr>, Box<Expr>),
    Call(Func, Vec<Expr>),
    CmpNum(Cmp, Box<Expr>, Box<Expr>),
    CmpText(bool, Box<Expr>, Box<Expr>),
    CmpBool(bool, Box<Expr>, Box<Expr>),
    InNum(bool, Box<Expr>, Vec<f64>),
    InText(bool, Box<Expr>, Vec<Box<str>>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
}

/// A compiled boolean condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    expr: Expr,
    features: Vec<&'static str>,
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    i: usize,
    features: Vec<&'static str>,
    /// Levels of nesting open at the current token.
    depth: usize,
}

type Typed = (Expr, Type, usize);

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.i].0
    }
    fn at(&self) -> usize {
        self.toks[self.i].1
    }
    fn bump(&mut self) -> (Tok, usize) {
        let t = self.toks[self.i].clone();
        if self.i + 1 < self.toks.len() {
            self.i += 1;
        }
        t
    }
    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Tok::Op(o) if *o == op)
    }
    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s == w)
    }
    fn expect_op(&mut self, op: &str) -> Result<(), ExprError> {
        if self.is_op(op) {
            self.bump();
            Ok(())
        } else {
            err(self.at(), format!("expected {op:?}, found {}", describe(self.peek())))
        }
    }

    /// Opens a level of nesting at `at`; [`Self::leave`] closes it.
    fn enter(&mut self, at: usize) -> Result<(), ExprError> {
        if self.depth >= NESTING_MAX {
            return err(at, format!("nested deeper than {NESTING_MAX} levels (parentheses, function calls, \"not\" and \"-\")"));
        }
        self.depth += 1;
        Ok(())
    }
    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn want(&self, (e, t, at): Typed, want: Type, what: &str) -> Result<Expr, ExprError> {
        if t == want { Ok(e) } else { err(at, format!("{what} needs a {want}, found a {t}")) }
    }

    fn or(&mut self) -> Result<Typed, ExprError> {
        let first = self.and()?;
        if !self.is_word("or") {
            return Ok(first);
        }
        let at = first.2;
        let mut parts = vec![self.want(first, Type::Bool, "\"or\"")?];
        while self.is_word("or") {
            self.bump();
            let next = self.and()?;
            parts.push(self.want(next, Type::Bool, "\"or\"")?);
        }
        Ok((Expr::Or(parts), Type::Bool, at))
    }

    fn and(&mut self) -> Result<Typed, ExprError> {
        let first = self.not()?;
        if !self.is_word("and") {
            return Ok(first);
        }
        let at = first.2;
        let mut parts = vec![self.want(first, Type::Bool, "\"and\"")?];
        while self.is_word("and") {
            self.bump();
            let next = self.not()?;
            parts.push(self.want(next, Type::Bool, "\"and\"")?);
        }
        Ok((Expr::And(parts), Type::Bool, at))
    }

    fn not(&mut self) -> Result<Typed, ExprError> {
        if self.is_word("not") {
            let (_, at) = self.bump();
            self.enter(at)?;
            let inner = self.not()?;
            self.leave();
            return Ok((Expr::Not(Box::new(self.want(inner, Type::Bool, "\"not\"")?)), Type::Bool, at));
        }
        self.compare()
    }

    fn compare(&mut self) -> Result<Typed, ExprError> {
        let left = self.sum()?;
        let negated_in = self.is_word("not") && matches!(self.toks.get(self.i + 1), Some((Tok::Ident(w), _)) if w == "in");
        if self.is_word("in") || negated_in {
            if negated_in {
                self.bump();
            }
            self.bump();
            return self.in_list(left, negated_in);
        }
        let op = match self.peek() {
            Tok::Op("==") => Cmp::Eq,
            Tok::Op("!=") => Cmp::Ne,
            Tok::Op("<") => Cmp::Lt,
            Tok::Op("<=") => Cmp::Le,
            Tok::Op(">") => Cmp::Gt,
            Tok::Op(">=") => Cmp::Ge,
            _ => return Ok(left),
        };
        let (_, op_at) = self.bump();
        let right = self.sum()?;
        let at = left.2;
        match (left.1, right.1, op) {
            (Type::Number, Type::Number, _) => Ok((Expr::CmpNum(op, Box::new(left.0), Box::new(right.0)), Type::Bool, at)),
            (Type::Text, Type::Text, Cmp::Eq | Cmp::Ne) => {
                Ok((Expr::CmpText(op == Cmp::Ne, Box::new(left.0), Box::new(right.0)), Type::Bool, at))
            }
            (Type::Bool, Type::Bool, Cmp::Eq | Cmp::Ne) => {
                Ok((Expr::CmpBool(op == Cmp::Ne, Box::new(left.0), Box::new(right.0)), Type::Bool, at))
            }
            (a, b, _) if a == b => err(op_at, format!("a {a} can only be compared with == or !=")),
            (a, b, _) => err(op_at, format!("cannot compare a {a} with a {b}")),
        }
    }

    fn in_list(&mut self, left: Typed, negated: bool) -> Result<Typed, ExprError> {
        self.expect_op("[")?;
        let at = left.2;
        let mut nums = Vec::new();
        let mut texts = Vec::new();
        loop {
            let (tok, tok_at) = self.bump();
            match (tok, left.1) {
                (Tok::Num(v), Type::Number) => nums.push(v),
                (Tok::Op("-"), Type::Number) => match self.bump() {
                    (Tok::Num(v), _) => nums.push(-v),
                    (other, a) => return err(a, format!("expected a number, found {}", describe(&other))),
                },
                (Tok::Str(s), Type::Text) => texts.push(s.into_boxed_str()),
                (other, t) => return err(tok_at, format!("a list for a {t} holds {t} literals, found {}", describe(&other))),
            }
            if self.is_op(",") {
                self.bump();
                continue;
            }
            self.expect_op("]")?;
            break;
        }
        match left.1 {
            Type::Number => Ok((Expr::InNum(negated, Box::new(left.0), nums), Type::Bool, at)),
            Type::Text => Ok((Expr::InText(negated, Box::new(left.0), texts), Type::Bool, at)),
            Type::Bool => err(at, "\"in\" needs a number or a text on its left"),
        }
    }

    fn sum(&mut self) -> Result<Typed, ExprError> {
        let mut left = self.product()?;
        loop {
            let op = match self.peek() {
                Tok::Op("+") => Arith::Add,
                Tok::Op("-") => Arith::Sub,
                _ => return Ok(left),
            };
            self.bump();
            let right = self.product()?;
            let at = left.2;
            let a = self.want(left, Type::Number, "arithmetic")?;
            let b = self.want(right, Type::Number, "arithmetic")?;
            left = (Expr::Arith(op, Box::new(a), Box::new(b)), Type::Number, at);
        }
    }

    fn product(&mut self) -> Result<Typed, ExprError> {
        let mut left = self.unary()?;
        loop {
            let op = match self.peek() {
                Tok::Op("*") => Arith::Mul,
                Tok::Op("/") => Arith::Div,
                _ => return Ok(left),
            };
            self.bump();
            let right = self.unary()?;
            let at = left.2;
            let a = self.want(left, Type::Number, "arithmetic")?;
            let b = self.want(right, Type::Number, "arithmetic")?;
            left = (Expr::Arith(op, Box::new(a), Box::new(b)), Type::Number, at);
        }
    }

    fn unary(&mut self) -> Result<Typed, ExprError> {
        if self.is_op("-") {
            let (_, at) = self.bump();
            self.enter(at)?;
            let inner = self.unary()?;
            self.leave();
            return Ok((Expr::Neg(Box::new(self.want(inner, Type::Number, "\"-\"")?)), Type::Number, at));
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<Typed, ExprError> {
        let (tok, at) = self.bump();
        match tok {
            Tok::Num(v) => Ok((Expr::Num(v), Type::Number, at)),
            Tok::Str(s) => Ok((Expr::Text(s.into_boxed_str()), Type::Text, at)),
            Tok::Op("(") => {
                self.enter(at)?;
                let inner = self.or()?;
                self.leave();
                self.expect_op(")")?;
                Ok((inner.0, inner.1, at))
            }
            Tok::Ident(w) if w == "true" || w == "false" => Ok((Expr::Bool(w == "true"), Type::Bool, at)),
            Tok::Ident(w) if ["and", "or", "not", "in"].contains(&w.as_str()) => err(at, format!("expected a value, found {w:?}")),
            Tok::Ident(w) if self.is_op("(") => {
                let func = match w.as_str() {
                    "min" => Func::Min,
                    "max" => Func::Max,
                    "abs" => Func::Abs,
                    _ => return err(at, format!("unknown function {w:?} (there are min, max and abs)")),
                };
                self.bump();
                self.enter(at)?;
                let mut args = Vec::new();
                loop {
                    let a = self.or()?;
                    args.push(self.want(a, Type::Number, &format!("{w}()"))?);
                    if self.is_op(",") {
                        self.bump();
                        continue;
                    }
                    self.expect_op(")")?;
                    break;
                }
                self.leave();
                let ok = match func {
                    Func::Abs => args.len() == 1,
                    Func::Min | Func::Max => !args.is_empty(),
                };
                if !ok {
                    return err(at, format!("{w}() takes {}", if func == Func::Abs { "one number" } else { "one or more numbers" }));
                }
                Ok((Expr::Call(func, args), Type::Number, at))
            }
            Tok::Ident(w) => match lookup(&w) {
                Some(FeatureRef::Num(n)) => {
                    self.features.push(finpulse_state::features::NUMERIC[n as usize].name);
                    Ok((Expr::Feature(n), Type::Number, at))
                }
                Some(FeatureRef::Text(t)) => {
                    self.features.push(finpulse_state::features::TEXTUAL[t as usize].name);
                    Ok((Expr::TextFeature(t), Type::Text, at))
                }
                None => err(at, format!("unknown feature {w:?} (`finpulse rules features` lists them)")),
            },
            other => err(at, format!("expected a value, found {}", describe(&other))),
        }
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Num(v) => format!("the number {v}"),
        Tok::Str(s) => format!("the text {s:?}"),
        Tok::Ident(w) => format!("{w:?}"),
        Tok::Op(o) => format!("{o:?}"),
        Tok::End => "the end".into(),
    }
}

impl Condition {
    /// Compiles a boolean expression.
    pub fn compile(src: &str) -> Result<Self, ExprError> {
        let toks = lex(src)?;
        if toks.len() == 1 {
            return err(0, "the condition is empty");
        }
        let mut p = Parser { toks, i: 0, features: Vec::new(), depth: 0 };
        let typed = p.or()?;
        if !matches!(p.peek(), Tok::End) {
            return err(p.at(), format!("expected \"and\", \"or\" or the end, found {}", describe(p.peek())));
        }
        let expr = p.want(typed, Type::Bool, "a rule's condition")?;
        let mut features = p.features;
        features.sort_unstable();
        features.dedup();
        Ok(Self { expr, features })
    }

    /// Whether the condition holds for a row.
    pub fn holds(&self, row: &FeatureRow<'_>) -> bool {
        truth(&self.expr, row)
    }

    /// The features it reads.
    pub fn features(&self) -> &[&'static str] {
        &self.features
    }
}

fn number(e: &Expr, row: &FeatureRow<'_>) -> f64 {
    match e {
        Expr::Num(v) => *v,
        Expr::Feature(n) => row.get(*n),
        Expr::Neg(a) => -number(a, row),
        Expr::Arith(op, a, b) => {
            let (a, b) = (number(a, row), number(b, row));
            match op {
                Arith::Add => a + b,
                Arith::Sub => a - b,
                Arith::Mul => a * b,
                Arith::Div => a / b,
            }
        }
        Expr::Call(Func::Abs, args) => number(&args[0], row).abs(),
        // NaN in, NaN out: a missing value is not silently skipped.
        Expr::Call(Func::Min, args) => {
            args.iter().map(|a| number(a, row)).fold(f64::INFINITY, |m, x| if x.is_nan() || m.is_nan() { f64::NAN } else { m.min(x) })
        }
        Expr::Call(Func::Max, args) => {
            args.iter().map(|a| number(a, row)).fold(f64::NEG_INFINITY, |m, x| if x.is_nan() || m.is_nan() { f64::NAN } else { m.max(x) })
        }
        _ => f64::NAN, // unreachable after type checking
    }
}

fn text<'a>(e: &'a Expr, row: &FeatureRow<'a>) -> &'a str {
    match e {
        Expr::Text(s) => s,
        Expr::TextFeature(t) => row.text(*t),
        _ => "",
    }
}

fn truth(e: &Expr, row: &FeatureRow<'_>) -> bool {
    match e {
        Expr::Bool(b) => *b,
        Expr::CmpNum(op, a, b) => {
            let (a, b) = (number(a, row), number(b, row));
            match op {
                Cmp::Eq => a == b,
                Cmp::Ne => a != b && !a.is_nan() && !b.is_nan(),
                Cmp::Lt => a < b,
                Cmp::Le => a <= b,
                Cmp::Gt => a > b,
                Cmp::Ge => a >= b,
            }
        }
        Expr::CmpText(ne, a, b) => (text(a, row) == text(b, row)) != *ne,
        Expr::CmpBool(ne, a, b) => (truth(a, row) == truth(b, row)) != *ne,
        Expr::InNum(neg, a, list) => {
            let x = number(a, row);
            !x.is_nan() && list.contains(&x) != *neg
        }
        Expr::InText(neg, a, list) => {
            let x = text(a, row);
            list.iter().any(|s| &**s == x) != *neg
        }
        Expr::And(parts) => parts.iter().all(|p| truth(p, row)),
        Expr::Or(parts) => parts.iter().any(|p| truth(p, row)),
        Expr::Not(a) => !truth(a, row),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> FeatureRow<'static> {
        let mut r = FeatureRow::default();
        r.set(Num::TxnAmountFen, 60_000.0);
        r.set(Num::UserAvgAmountFen30d, 10_000.0);
        r.set(Num::UserTxCount1h, 12.0);
        r.text[Text::TxnType as usize] = "payment";
        r.text[Text::UserChannel as usize] = "douyin";
        r
    }

    fn holds(src: &str) -> bool {
        Condition::compile(src).unwrap_or_else(|e| panic!("{src}: {e} at {}", e.at)).holds(&row())
    }

    #[test]
    fn the_issue_example_holds_on_a_burst_of_large_payments() {
        assert!(holds("payment.amount_fen > 5 * user.avg_amount_fen_30d and user.tx_count_1h > 10"));
        assert!(!holds("payment.amount_fen > 7 * user.avg_amount_fen_30d and user.tx_count_1h > 10"));
    }

    #[test]
    fn precedence_parentheses_functions_and_lists() {
        assert!(holds("1 + 2 * 3 == 7"));
        assert!(holds("(1 + 2) * 3 == 9"));
        assert!(holds("-2 * -3 == 6 and abs(-4) == 4 and max(1, 5, 3) == 5 and min(2, 1_000) == 2"));
        assert!(holds("txn.type in ['payment', 'transfer'] and user.channel not in [\"wechat\"]"));
        assert!(holds("user.tx_count_1h in [11, 12] and not user.tx_count_1h in [1, -2]"));
        assert!(holds("true and not false or 1 > 2"));
        assert!(holds("txn.type == 'payment' and user.channel != 'wechat'"));
        assert!(holds("1.5e3 == 1500 # a comment"));
    }

    #[test]
    fn missing_values_make_every_comparison_false() {
        // user.avg_amount_fen_7d is NaN in the test row.
        assert!(!holds("user.avg_amount_fen_7d > 0"));
        assert!(!holds("user.avg_amount_fen_7d <= 0"));
        assert!(!holds("user.avg_amount_fen_7d != 0"));
        assert!(!holds("max(user.avg_amount_fen_7d, 1) >= 1"));
        assert!(holds("not user.avg_amount_fen_7d > 0"));
    }

    fn error(src: &str) -> (usize, String) {
        let e = Condition::compile(src).expect_err(src);
        (e.at, e.message)
    }

    #[test]
    fn syntax_and_type_errors_say_what_and_where() {
        assert_eq!(error("user.tx_count_1h > "), (19, "expected a value, found the end".into()));
        let (at, m) = error("user.tx_cnt_1h > 3");
        assert_eq!(at, 0);
        assert!(m.contains("unknown feature \"user.tx_cnt_1h\""), "{m}");
        let (at, m) = error("user.tx_count_1h > 'ten'");
        assert_eq!(at, 17);
        assert!(m.contains("cannot compare a number with a text"), "{m}");
        let (at, m) = error("user.tx_count_1h = 3");
        assert_eq!((at, m.as_str()), (17, "use == to compare"));
        let (at, m) = error("txn.amount_fen + 3");
        assert_eq!(at, 0);
        assert!(m.contains("needs a boolean, found a number"), "{m}");
        let (at, m) = error("txn.type > 'a'");
        assert_eq!(at, 9);
        assert!(m.contains("only be compared with == or !="), "{m}");
        let (at, m) = error("user.channel == 'douyin");
        assert_eq!((at, m.as_str()), (16, "text is not closed"));
        let (at, m) = error("txn.amount_fen > 1 and");
        assert_eq!(at, 22);
        assert!(m.contains("expected a value"), "{m}");
        let (at, m) = error("sqrt(txn.amount_fen) > 1");
        assert_eq!(at, 0);
        assert!(m.contains("unknown function"), "{m}");
        let (_, m) = error("txn.amount_fen > 1 txn.amount_fen");
        assert!(m.contains("expected \"and\", \"or\" or the end"), "{m}");
        assert_eq!(error("   ").1, "the condition is empty");
        let (at, m) = error("txn.type in [1]");
        assert_eq!(at, 13);
        assert!(m.contains("holds text literals"), "{m}");
        assert_eq!(error("txn.amount_fen ? 2").1, "unexpected character '?'");
    }

    #[test]
    fn nesting_past_the_limit_is_an_error_not_a_stack_overflow() {
        // Found by running the rules_parser fuzz target on deeply nested input: 50,000
        // parentheses (a tenth of a ruleset file's size limit) overflowed the stack.
        let n = NESTING_MAX;
        let cases = [("(", "true", ")", ""), ("not ", "true", "", ""), ("-", "1", "", " == 1"), ("abs(", "1", ")", " == 1")];
        for (open, inner, close, tail) in cases {
            let nested = |levels: usize| format!("{}{inner}{}{tail}", open.repeat(levels), close.repeat(levels));
            assert!(holds(&nested(n)), "{open:?} {n} deep");
            let (at, m) = error(&nested(50_000));
            assert_eq!(
                (at, m.as_str()),
                (n * open.len(), "nested deeper than 100 levels (parentheses, function calls, \"not\" and \"-\")")
            );
        }
        // "(not " opens two levels.
        let mixed = |groups: usize| format!("{}true{}", "(not ".repeat(groups), ")".repeat(groups));
        assert!(Condition::compile(&mixed(n / 2)).is_ok());
        assert_eq!(error(&mixed(n / 2 + 1)).0, n / 2 * 5);
        // Long flat chains of "and" do not nest.
        assert!(holds(&vec!["txn.amount_fen > 1"; 50_000].join(" and ")));
    }

    #[test]
    fn a_condition_lists_the_features_it_reads() {
        let c = Condition::compile("payment.amount_fen > 5 * user.avg_amount_fen_30d and txn.amount_fen > 0").unwrap();
        assert_eq!(c.features(), ["txn.amount_fen", "user.avg_amount_fen_30d"]);
    }
}
