// A small JavaScript tokenizer for read-only source views. It never builds
// markup from the source: each token becomes a text node in a span whose
// class names its kind, so any source is displayed exactly as written.

import { h } from "./dom.js";

const KEYWORDS = new Set(
  ("async await break case catch class const continue debugger default delete do else export extends finally for " +
    "from function if import in instanceof let new of return static super switch this throw try typeof var void while with yield")
    .split(" "),
);
const LITERALS = new Set(["true", "false", "null", "undefined", "NaN", "Infinity"]);
const BUILTINS = new Set(["Response", "Request", "Headers", "URL", "URLSearchParams", "JSON", "Math", "Date", "Promise", "Error", "TypeError", "Object", "Array", "String", "Number", "Boolean", "Map", "Set", "console", "crypto", "fetch", "TextEncoder", "TextDecoder", "AbortSignal"]);
// After these, a `/` starts a regular expression rather than dividing.
const BEFORE_REGEX = new Set(["return", "typeof", "instanceof", "in", "of", "new", "delete", "void", "throw", "case", "do", "else", "yield", "await"]);

const NUMBER = /^(?:0[xX][\da-fA-F_]+n?|0[bB][01_]+n?|0[oO][0-7_]+n?|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d+)?n?)/;
const IDENTIFIER = /^[A-Za-z_$\u00a0-\uffff][\w$\u00a0-\uffff]*/;

/** Splits JavaScript source into [kind, text] tokens covering every character. */
export function tokenize(source) {
  const tokens = [];
  // Each entry is the brace depth at which a template's `${` opened.
  const templates = [];
  let depth = 0;
  let i = 0;
  let previous = null; // the last token that was not space or a comment
  const push = (kind, text) => {
    tokens.push([kind, text]);
    if (kind !== "space" && kind !== "comment") previous = [kind, text];
  };
  const regexAllowed = () =>
    !previous ||
    (previous[0] === "punct" && !/[)\]}]$/.test(previous[1])) ||
    (previous[0] === "keyword" && BEFORE_REGEX.has(previous[1]));

  // Reads template text from `start`, just after its opening backtick or
  // the `}` that closes a `${...}`; the token includes that opener.
  const templateText = (start) => {
    let j = start;
    while (j < source.length) {
      if (source[j] === "\\") j += 2;
      else if (source[j] === "`") {
        push("string", source.slice(start - 1, j + 1));
        return j + 1;
      } else if (source[j] === "$" && source[j + 1] === "{") {
        push("string", source.slice(start - 1, j + 2));
        templates.push(depth);
        depth += 1;
        return j + 2;
      } else j += 1;
    }
    push("string", source.slice(start - 1));
    return source.length;
  };

  while (i < source.length) {
    const rest = source.slice(i, i + 200);
    const c = source[i];
    let m;
    if (/\s/.test(c)) {
      let j = i;
      while (j < source.length && /\s/.test(source[j])) j += 1;
      push("space", source.slice(i, j));
      i = j;
    } else if (source.startsWith("//", i)) {
      const end = source.indexOf("\n", i);
      const j = end < 0 ? source.length : end;
      push("comment", source.slice(i, j));
      i = j;
    } else if (source.startsWith("/*", i)) {
      const end = source.indexOf("*/", i + 2);
      const j = end < 0 ? source.length : end + 2;
      push("comment", source.slice(i, j));
      i = j;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < source.length && source[j] !== c && source[j] !== "\n") j += source[j] === "\\" ? 2 : 1;
      j = Math.min(j + 1, source.length);
      push("string", source.slice(i, j));
      i = j;
    } else if (c === "`") {
      i = templateText(i + 1);
    } else if (c === "}" && templates.length && templates[templates.length - 1] === depth - 1) {
      templates.pop();
      depth -= 1;
      i = templateText(i + 1);
    } else if ((m = NUMBER.exec(rest)) && m[0] !== "." && /[\d.]/.test(c)) {
      push("number", m[0]);
      i += m[0].length;
    } else if ((m = IDENTIFIER.exec(rest))) {
      const word = m[0];
      const kind = KEYWORDS.has(word) ? "keyword" : LITERALS.has(word) ? "literal" : BUILTINS.has(word) ? "builtin" : "name";
      const isCall = kind === "name" && /^\s*\(/.test(source.slice(i + word.length, i + word.length + 20));
      push(isCall ? "call" : kind, word);
      i += word.length;
    } else if (c === "/" && regexAllowed()) {
      let j = i + 1;
      let inClass = false;
      while (j < source.length && source[j] !== "\n") {
        if (source[j] === "\\") j += 1;
        else if (source[j] === "[") inClass = true;
        else if (source[j] === "]") inClass = false;
        else if (source[j] === "/" && !inClass) break;
        j += 1;
      }
      j += 1;
      while (j < source.length && /[a-z]/.test(source[j])) j += 1;
      push("regex", source.slice(i, j));
      i = j;
    } else {
      if (c === "{") depth += 1;
      if (c === "}") depth = Math.max(0, depth - 1);
      push("punct", c);
      i += 1;
    }
  }
  return tokens;
}

/** Tokens grouped by line: a token spanning lines is cut at each line break. */
export function lines(source) {
  const result = [[]];
  for (const [kind, text] of tokenize(source)) {
    const parts = text.split("\n");
    parts.forEach((part, index) => {
      if (index > 0) result.push([]);
      if (part) result[result.length - 1].push([kind, part]);
    });
  }
  return result;
}

/**
 * A read-only, highlighted, line-numbered view of `source`. `mark` is a
 * 1-based line to point out (a compile error's).
 */
export function codeView(source, { label = "Source", mark } = {}) {
  const all = lines(source);
  // A final line break ends the last line; it does not start an empty one.
  if (all.length > 1 && !all[all.length - 1].length) all.pop();
  const rows = all.map((tokens, index) =>
    h(
      "span",
      { class: ["line", index + 1 === mark ? "marked" : null], "data-n": index + 1 },
      tokens.map(([kind, text]) => (kind === "space" ? text : h("span", { class: `tok-${kind}` }, text))),
      "\n",
    ),
  );
  return h("pre", { class: "code", tabindex: "0", role: "region", "aria-label": label }, h("code", {}, rows));
}
