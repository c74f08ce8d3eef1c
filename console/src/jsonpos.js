// A strict JSON reader that remembers where each value starts, so a
// template's problems, which the server names by JSON path
// ("properties.customize[1].inline"), can be shown at their line and column.

// Parses `text`. Returns {ok: true, positions} where positions maps each JSON
// path ("" for the root) to {line, column} (1-based), or {ok: false, error:
// {line, column, message}} for the first syntax error.
export function locate(text) {
  const positions = new Map();
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const here = () => ({ line, column: i - lineStart + 1 });
  const fail = (message) => {
    const e = new Error(message);
    e.pos = here();
    throw e;
  };
  const ws = () => {
    for (;;) {
      const c = text[i];
      if (c === '\n') {
        i++;
        line++;
        lineStart = i;
      } else if (c === ' ' || c === '\t' || c === '\r') {
        i++;
      } else {
        return;
      }
    }
  };
  const str = () => {
    i++; // opening quote
    let out = '';
    for (;;) {
      if (i >= text.length) fail('unterminated string');
      const c = text[i];
      if (c === '"') {
        i++;
        return out;
      }
      if (c === '\n' || c.charCodeAt(0) < 0x20) fail('control character in a string (escape it)');
      if (c === '\\') {
        const n = text[i + 1];
        const simple = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
        if (n in simple) {
          out += simple[n];
          i += 2;
        } else if (n === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
          out += String.fromCharCode(parseInt(text.slice(i + 2, i + 6), 16));
          i += 6;
        } else {
          fail('bad escape sequence in a string');
        }
      } else {
        out += c;
        i++;
      }
    }
  };
  const value = (path, depth) => {
    ws();
    if (depth > 64) fail('nested too deeply');
    positions.set(path, here());
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a member name in double quotes');
        const keyPos = here();
        const key = str();
        const child = path ? `${path}.${key}` : key;
        ws();
        if (text[i] !== ':') fail(`expected ':' after "${key}"`);
        i++;
        value(child, depth + 1);
        if (!positions.has(`${child}#key`)) positions.set(`${child}#key`, keyPos);
        ws();
        if (text[i] === ',') {
          i++;
          ws();
          if (text[i] === '}') fail("a trailing ',' before '}'");
          continue;
        }
        if (text[i] === '}') {
          i++;
          return;
        }
        fail("expected ',' or '}'");
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (let n = 0; ; n++) {
        value(`${path}[${n}]`, depth + 1);
        ws();
        if (text[i] === ',') {
          i++;
          ws();
          if (text[i] === ']') fail("a trailing ',' before ']'");
          continue;
        }
        if (text[i] === ']') {
          i++;
          return;
        }
        fail("expected ',' or ']'");
      }
    }
    if (c === '"') {
      str();
      return;
    }
    const m = /^(-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i, i + 64));
    if (!m) fail(i >= text.length ? 'unexpected end of the text: expected a value' : 'expected a value');
    i += m[0].length;
  };
  try {
    value('', 0);
    ws();
    if (i < text.length) fail('unexpected text after the JSON value');
    return { ok: true, positions };
  } catch (e) {
    if (!e.pos) throw e;
    return { ok: false, error: { ...e.pos, message: e.message } };
  }
}

// The position of `path` (a diagnostic's JSON path). A path that is not in
// the text (a required member that is missing) is shown at its nearest
// parent that is; the root is line 1, column 1.
export function positionOf(positions, path) {
  let p = path || '';
  // Paths may quote names with brackets: a["b"] -> a.b
  p = p.replace(/\["([^"\]]*)"\]/g, '.$1').replace(/^\./, '');
  for (;;) {
    if (positions.has(`${p}#key`)) return { ...positions.get(`${p}#key`), exact: p === path };
    if (positions.has(p)) return { ...positions.get(p), exact: p === path };
    if (!p) return { line: 1, column: 1, exact: false };
    const cut = Math.max(p.lastIndexOf('.'), p.lastIndexOf('['));
    p = cut > 0 ? p.slice(0, cut) : '';
  }
}

// The character offset of a 1-based line and column in `text`.
export function offsetOf(text, line, column) {
  let off = 0;
  for (let l = 1; l < line; l++) {
    const nl = text.indexOf('\n', off);
    if (nl < 0) return text.length;
    off = nl + 1;
  }
  return Math.min(text.length, off + column - 1);
}
