//! Tree ensembles trained elsewhere: LightGBM's text model files and XGBoost's JSON model
//! files, for binary classification over numeric features. They load into one representation,
//! score rows as the source library does (its comparison, its missing-value routing, its link
//! function), and give per-feature contributions the same way finpulse's own trees do.

use serde::{Deserialize, Serialize};

/// Why a model file could not be imported.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ImportError {
    /// A LightGBM text file problem, at a line.
    #[error("LightGBM model, line {line}: {problem}")]
    LightGbm {
        /// 1-based line.
        line: usize,
        /// What is wrong.
        problem: String,
    },
    /// An XGBoost JSON file problem, at a path in the document.
    #[error("XGBoost model, {path}: {problem}")]
    XgBoost {
        /// Where in the document.
        path: String,
        /// What is wrong.
        problem: String,
    },
}

/// Which library the model came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// LightGBM text format.
    Lightgbm,
    /// XGBoost JSON format.
    Xgboost,
}

/// Where a missing value (NaN) goes at a split.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    /// NaN follows the default side.
    NanDefault,
    /// NaN and values within ±1e-35 of zero follow the default side (LightGBM "zero" missing).
    ZeroDefault,
    /// NaN is compared as 0 (LightGBM with no missing values in training).
    NanAsZero,
}

/// LightGBM's zero threshold for "zero" missing values.
const ZERO_THRESHOLD: f64 = 1e-35;

/// A node: a split or a leaf; children index the same list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Node {
    /// Goes left when the value is at or below (LightGBM) or below (XGBoost) the threshold.
    Split {
        /// Feature index.
        feature: u32,
        /// The threshold.
        #[serde(with = "crate::float_text::one")]
        threshold: f64,
        /// Left child.
        left: u32,
        /// Right child.
        right: u32,
        /// Where missing values go when the rule sends them to the default side.
        default_left: bool,
        /// The missing-value rule.
        missing: Missing,
        /// Strict comparison in 32-bit floats (XGBoost) rather than `<=` in 64-bit (LightGBM).
        strict_f32: bool,
        /// Expected raw value below this node (for contributions).
        #[serde(with = "crate::float_text::one")]
        value: f64,
    },
    /// A leaf's raw value.
    Leaf {
        /// The value.
        #[serde(with = "crate::float_text::one")]
        value: f64,
    },
}

impl Node {
    fn value(&self) -> f64 {
        match self {
            Node::Split { value, .. } | Node::Leaf { value } => *value,
        }
    }
}

/// An imported ensemble: raw score = base + Σ leaves; probability = sigmoid(scale × raw).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImportedTrees {
    /// Where it came from.
    pub source: Source,
    /// Feature names, in the model's order.
    pub features: Vec<String>,
    /// Raw score before any tree.
    #[serde(with = "crate::float_text::one")]
    pub base: f64,
    /// The sigmoid's scale (LightGBM's `sigmoid:` parameter; 1 for XGBoost).
    #[serde(with = "crate::float_text::one")]
    pub sigmoid_scale: f64,
    /// Trees; node 0 is each one's root.
    pub trees: Vec<Vec<Node>>,
}

fn goes_left(node: &Node, x: &[f64]) -> Option<bool> {
    let Node::Split { feature, threshold, default_left, missing, strict_f32, .. } = node else { return None };
    let v = x.get(*feature as usize).copied().unwrap_or(f64::NAN);
    let default = match missing {
        Missing::NanDefault => v.is_nan(),
        Missing::ZeroDefault => v.is_nan() || v.abs() <= ZERO_THRESHOLD,
        Missing::NanAsZero => false,
    };
    if default {
        return Some(*default_left);
    }
    let v = if v.is_nan() { 0.0 } else { v };
    Some(if *strict_f32 { (v as f32) < (*threshold as f32) } else { v <= *threshold })
}

impl ImportedTrees {
    /// The raw score of one row (values in [`ImportedTrees::features`] order, NaN = missing).
    pub fn predict_row_raw(&self, x: &[f64]) -> f64 {
        self.base
            + self
                .trees
                .iter()
                .map(|t| {
                    let mut at = 0usize;
                    while let Some(left) = goes_left(&t[at], x) {
                        let Node::Split { left: l, right: r, .. } = &t[at] else { unreachable!("goes_left is Some only for splits") };
                        at = if left { *l } else { *r } as usize;
                    }
                    t[at].value()
                })
                .sum::<f64>()
    }

    /// The probability of one row.
    pub fn predict_row(&self, x: &[f64]) -> f64 {
        crate::gbdt::sigmoid(self.sigmoid_scale * self.predict_row_raw(x))
    }

    /// Per-feature contributions to the raw score (changes in expected value along the path).
    pub fn contributions_row(&self, x: &[f64], out: &mut [f64]) {
        out.iter_mut().for_each(|o| *o = 0.0);
        for t in &self.trees {
            let mut at = 0usize;
            while let Some(left) = goes_left(&t[at], x) {
                let Node::Split { left: l, right: r, feature, .. } = &t[at] else { unreachable!("goes_left is Some only for splits") };
                let next = if left { *l } else { *r } as usize;
                if let Some(o) = out.get_mut(*feature as usize) {
                    *o += t[next].value() - t[at].value();
                }
                at = next;
            }
        }
    }

    /// Reads a LightGBM text model (binary objective, numeric splits).
    pub fn from_lightgbm(text: &str) -> Result<Self, ImportError> {
        let err = |line: usize, problem: String| ImportError::LightGbm { line, problem };
        let mut features: Option<Vec<String>> = None;
        let mut scale = None;
        let mut trees = Vec::new();
        let mut block: Vec<(usize, &str, &str)> = Vec::new();
        let mut in_tree = false;
        let lines: Vec<&str> = text.lines().collect();
        let finish = |block: &mut Vec<(usize, &str, &str)>, trees: &mut Vec<Vec<Node>>| -> Result<(), ImportError> {
            if !block.is_empty() {
                trees.push(lightgbm_tree(block)?);
                block.clear();
            }
            Ok(())
        };
        for (i, raw) in lines.iter().enumerate() {
            let line = raw.trim();
            let n = i + 1;
            if let Some(index) = line.strip_prefix("Tree=") {
                finish(&mut block, &mut trees)?;
                in_tree = true;
                block.push((n, "Tree", index));
                continue;
            }
            if line == "end of trees" {
                finish(&mut block, &mut trees)?;
                break;
            }
            let Some((k, v)) = line.split_once('=') else { continue };
            if in_tree {
                block.push((n, k, v));
            } else if k == "objective" {
                let mut parts = v.split_whitespace();
                if parts.next() != Some("binary") {
                    return Err(err(n, format!("objective {v:?}: only binary classification models can be imported")));
                }
                let s = parts.find_map(|p| p.strip_prefix("sigmoid:")).unwrap_or("1");
                scale = Some(s.parse::<f64>().map_err(|_| err(n, format!("sigmoid {s:?} is not a number")))?);
            } else if k == "feature_names" {
                features = Some(v.split_whitespace().map(str::to_string).collect());
            } else if k == "num_class" && v != "1" {
                return Err(err(n, format!("num_class={v}: only binary classification models can be imported")));
            }
        }
        if lines.first().is_none_or(|l| l.trim() != "tree") {
            return Err(err(1, "not a LightGBM text model (it starts with \"tree\")".into()));
        }
        let features = features.ok_or_else(|| err(lines.len(), "no feature_names line".into()))?;
        let sigmoid_scale = scale.ok_or_else(|| err(lines.len(), "no objective line".into()))?;
        if trees.is_empty() {
            return Err(err(lines.len(), "no trees".into()));
        }
        let model = Self { source: Source::Lightgbm, features, base: 0.0, sigmoid_scale, trees };
        model.check_features().map_err(|p| err(lines.len(), p))?;
        Ok(model)
    }

    /// Reads an XGBoost JSON model (`binary:logistic`, numeric splits).
    pub fn from_xgboost(json: &str) -> Result<Self, ImportError> {
        let err = |path: &str, problem: String| ImportError::XgBoost { path: path.to_string(), problem };
        let doc: serde_json::Value = serde_json::from_str(json).map_err(|e| err("document", e.to_string()))?;
        let learner = doc.get("learner").ok_or_else(|| err("learner", "missing: not an XGBoost JSON model".into()))?;
        let objective = learner.pointer("/objective/name").and_then(|v| v.as_str()).unwrap_or("");
        if !["binary:logistic", "reg:logistic"].contains(&objective) {
            return Err(err("learner.objective.name", format!("{objective:?}: only binary:logistic models can be imported")));
        }
        let base_text = learner.pointer("/learner_model_param/base_score").and_then(|v| v.as_str()).unwrap_or("0.5");
        let p: f64 = base_text
            .trim_matches(|c| c == '[' || c == ']')
            .parse()
            .map_err(|_| err("learner.learner_model_param.base_score", format!("{base_text:?} is not a number")))?;
        if !(p > 0.0 && p < 1.0) {
            return Err(err("learner.learner_model_param.base_score", format!("{p} is not a probability")));
        }
        let features: Vec<String> = match learner.get("feature_names").and_then(|v| v.as_array()) {
            Some(names) if !names.is_empty() => names.iter().map(|n| n.as_str().unwrap_or("").to_string()).collect(),
            _ => {
                let n: usize =
                    learner.pointer("/learner_model_param/num_feature").and_then(|v| v.as_str()).and_then(|s| s.parse().ok()).unwrap_or(0);
                (0..n).map(|i| format!("f{i}")).collect()
            }
        };
        let trees_json = learner
            .pointer("/gradient_booster/model/trees")
            .and_then(|v| v.as_array())
            .ok_or_else(|| err("learner.gradient_booster.model.trees", "missing (only gbtree models can be imported)".into()))?;
        let mut trees = Vec::with_capacity(trees_json.len());
        for (k, t) in trees_json.iter().enumerate() {
            let path = format!("learner.gradient_booster.model.trees[{k}]");
            trees.push(xgboost_tree(t).map_err(|p| err(&path, p))?);
        }
        if trees.is_empty() {
            return Err(err("learner.gradient_booster.model.trees", "no trees".into()));
        }
        let model = Self { source: Source::Xgboost, features, base: (p / (1.0 - p)).ln(), sigmoid_scale: 1.0, trees };
        model.check_features().map_err(|p| err("learner.feature_names", p))?;
        Ok(model)
    }

    fn check_features(&self) -> Result<(), String> {
        for t in &self.trees {
            for n in t {
                if let Node::Split { feature, .. } = n
                    && *feature as usize >= self.features.len()
                {
                    return Err(format!("a split reads feature {feature}, but the model names {} features", self.features.len()));
                }
            }
        }
        Ok(())
    }
}

fn numbers<T: std::str::FromStr>(block: &[(usize, &str, &str)], key: &str) -> Result<Vec<T>, ImportError> {
    let tree_line = block.first().map_or(0, |b| b.0);
    let Some(&(line, _, v)) = block.iter().find(|(_, k, _)| *k == key) else {
        return Err(ImportError::LightGbm { line: tree_line, problem: format!("tree has no {key}") });
    };
    v.split_whitespace()
        .map(|s| s.parse::<T>().map_err(|_| ImportError::LightGbm { line, problem: format!("{key}: {s:?} is not a number") }))
        .collect()
}

/// Expected values of internal nodes, bottom up: the cover-weighted mean of their children.
fn fill_values(nodes: &mut [Node], covers: &[f64]) {
    fn walk(nodes: &mut [Node], covers: &[f64], at: usize) -> f64 {
        let (l, r) = match &nodes[at] {
            Node::Leaf { value } => return *value,
            Node::Split { left, right, .. } => (*left as usize, *right as usize),
        };
        let (vl, vr) = (walk(nodes, covers, l), walk(nodes, covers, r));
        let (cl, cr) = (covers[l], covers[r]);
        let v = if cl + cr > 0.0 { (vl * cl + vr * cr) / (cl + cr) } else { (vl + vr) / 2.0 };
        if let Node::Split { value, .. } = &mut nodes[at] {
            *value = v;
        }
        v
    }
    if !nodes.is_empty() {
        walk(nodes, covers, 0);
    }
}

fn lightgbm_tree(block: &[(usize, &str, &str)]) -> Result<Vec<Node>, ImportError> {
    let line = block[0].0;
    let leaves: usize = numbers::<usize>(block, "num_leaves")?.first().copied().unwrap_or(0);
    if numbers::<usize>(block, "num_cat").map(|v| v.first().copied().unwrap_or(0)).unwrap_or(0) > 0 {
        return Err(ImportError::LightGbm { line, problem: "categorical splits cannot be imported (numeric features only)".into() });
    }
    let leaf_values: Vec<f64> = numbers(block, "leaf_value")?;
    if leaves <= 1 {
        return Ok(vec![Node::Leaf { value: leaf_values.first().copied().unwrap_or(0.0) }]);
    }
    let features: Vec<u32> = numbers(block, "split_feature")?;
    let thresholds: Vec<f64> = numbers(block, "threshold")?;
    let kinds: Vec<u32> = numbers(block, "decision_type")?;
    let lefts: Vec<i64> = numbers(block, "left_child")?;
    let rights: Vec<i64> = numbers(block, "right_child")?;
    let leaf_cover: Vec<f64> = numbers(block, "leaf_weight").or_else(|_| numbers(block, "leaf_count"))?;
    let inner_cover: Vec<f64> = numbers(block, "internal_weight").or_else(|_| numbers(block, "internal_count"))?;
    let inner = leaves - 1;
    let lens = [features.len(), thresholds.len(), kinds.len(), lefts.len(), rights.len(), inner_cover.len()];
    if lens.iter().any(|&n| n != inner) || leaf_values.len() != leaves || leaf_cover.len() != leaves {
        return Err(ImportError::LightGbm {
            line,
            problem: format!("a tree of {leaves} leaves needs {inner} splits; the arrays disagree"),
        });
    }
    // Internal nodes first, then leaves: child c >= 0 is node c, c < 0 is leaf !c.
    let child = |c: i64| -> Result<u32, ImportError> {
        let at = if c >= 0 { c as usize } else { inner + (!c) as usize };
        if at >= inner + leaves {
            return Err(ImportError::LightGbm { line, problem: format!("child {c} is outside the tree") });
        }
        Ok(at as u32)
    };
    let mut nodes = Vec::with_capacity(inner + leaves);
    for i in 0..inner {
        let kind = kinds[i];
        if kind & 1 == 1 {
            return Err(ImportError::LightGbm { line, problem: "categorical splits cannot be imported (numeric features only)".into() });
        }
        let missing = match (kind >> 2) & 3 {
            0 => Missing::NanAsZero,
            1 => Missing::ZeroDefault,
            _ => Missing::NanDefault,
        };
        nodes.push(Node::Split {
            feature: features[i],
            threshold: thresholds[i],
            left: child(lefts[i])?,
            right: child(rights[i])?,
            default_left: kind & 2 == 2,
            missing,
            strict_f32: false,
            value: 0.0,
        });
    }
    nodes.extend(leaf_values.iter().map(|&value| Node::Leaf { value }));
    let covers: Vec<f64> = inner_cover.into_iter().chain(leaf_cover).collect();
    fill_values(&mut nodes, &covers);
    Ok(nodes)
}

fn xgboost_tree(t: &serde_json::Value) -> Result<Vec<Node>, String> {
    let array = |key: &str| -> Result<&Vec<serde_json::Value>, String> {
        t.get(key).and_then(|v| v.as_array()).ok_or_else(|| format!("{key} is missing"))
    };
    let num = |v: &serde_json::Value| v.as_f64().ok_or_else(|| format!("{v} is not a number"));
    let lefts = array("left_children")?;
    let rights = array("right_children")?;
    let conditions = array("split_conditions")?;
    let indices = array("split_indices")?;
    let defaults = array("default_left")?;
    let hessians = array("sum_hessian")?;
    let kinds = t.get("split_type").and_then(|v| v.as_array());
    let n = lefts.len();
    if [rights.len(), conditions.len(), indices.len(), defaults.len(), hessians.len()].iter().any(|&m| m != n) || n == 0 {
        return Err(format!("the node arrays disagree in length ({n} left children)"));
    }
    let mut nodes = Vec::with_capacity(n);
    for i in 0..n {
        let l = num(&lefts[i])? as i64;
        if l < 0 {
            nodes.push(Node::Leaf { value: num(&conditions[i])? });
            continue;
        }
        if kinds.and_then(|k| k.get(i)).and_then(|v| v.as_i64()).unwrap_or(0) != 0 {
            return Err(format!("node {i}: categorical splits cannot be imported (numeric features only)"));
        }
        let r = num(&rights[i])? as i64;
        if l as usize >= n || r < 0 || r as usize >= n {
            return Err(format!("node {i}: a child is outside the tree"));
        }
        nodes.push(Node::Split {
            feature: num(&indices[i])? as u32,
            threshold: num(&conditions[i])?,
            left: l as u32,
            right: r as u32,
            default_left: num(&defaults[i])? != 0.0,
            missing: Missing::NanDefault,
            strict_f32: true,
            value: 0.0,
        });
    }
    let covers: Vec<f64> = hessians.iter().map(num).collect::<Result<_, _>>()?;
    fill_values(&mut nodes, &covers);
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_of_the_wrong_kind_are_named() {
        assert_eq!(
            ImportedTrees::from_lightgbm("hello").unwrap_err(),
            ImportError::LightGbm { line: 1, problem: "not a LightGBM text model (it starts with \"tree\")".into() }
        );
        let e = ImportedTrees::from_lightgbm("tree\nversion=v4\nobjective=regression\n").unwrap_err().to_string();
        assert_eq!(e, "LightGBM model, line 3: objective \"regression\": only binary classification models can be imported");
        let e = ImportedTrees::from_xgboost("{\"learner\": {\"objective\": {\"name\": \"reg:squarederror\"}}}").unwrap_err().to_string();
        assert!(e.contains("only binary:logistic"), "{e}");
        let e = ImportedTrees::from_xgboost("[1, 2").unwrap_err().to_string();
        assert!(e.starts_with("XGBoost model, document:"), "{e}");
    }
}
