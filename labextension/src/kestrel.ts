/**
 * The Kestrel language for CodeMirror 6: a stream tokenizer mirroring the Pygments
 * lexer (kestrel_kernel/lexer.py) rule for rule and in the same order, so a cell in
 * JupyterLab and its nbconvert/HTML export are highlighted alike.
 *
 * Pygments token -> CodeMirror tag:
 *   Keyword (commands, clauses), Keyword.Pseudo (relations)  -> keyword
 *   Operator.Word (AND, OR, NOT, IN, LIKE, ...)               -> operatorKeyword
 *   Name.Builtin (COUNT, ..., TIMESTAMPED, ...)               -> standard(variableName)
 *   Keyword.Type (DAYS, HOURS, ...)                           -> unit
 *   Keyword.Constant (true, false / null)                     -> bool / null
 *   Name.Class (entity type after GET/FIND/NEW, before `:`)   -> typeName
 *   Name.Attribute (after `type:`)                            -> propertyName
 *   Literal.Date (timestamps)                                 -> special(string)
 *   String.Other (URIs, paths)                                -> url
 *   String.Affix + String (r'...', '...', "...")              -> string
 *   Comment, Number, Operator, Punctuation                    -> comment, number, operator, punctuation
 *   Name (variables, attributes)                              -> no token: bare text
 */

import type { StreamParser, StringStream } from '@codemirror/language';

// The word lists of kestrel_kernel/lexer.py (tests/browser/test_labextension.py compares them).
export const COMMANDS = ['GET', 'FIND', 'NEW', 'LOAD', 'SAVE', 'SORT', 'GROUP', 'JOIN', 'APPLY',
  'DISP', 'INFO', 'DESCRIBE', 'EXPLAIN'];
export const CLAUSES = ['FROM', 'WHERE', 'AS', 'TO', 'BY', 'BIN', 'WITH', 'ON', 'ATTR', 'LIMIT',
  'OFFSET', 'START', 'STOP', 'LAST', 'ASC', 'DESC', 'SIGMA'];
export const OPERATOR_WORDS = ['AND', 'OR', 'NOT', 'IS', 'IN', 'LIKE', 'MATCHES', 'ISSUBSET',
  'ISSUPERSET'];
export const RELATIONS = ['CREATED', 'ACCEPTED', 'CONTAINED', 'LINKED', 'LOADED', 'OWNED'];
export const FUNCTIONS = ['COUNT', 'SUM', 'MIN', 'MAX', 'AVG', 'NUNIQUE', 'TIMESTAMPED',
  'ADDOBSID', 'RECORDS'];
export const TIME_UNITS = ['DAYS', 'DAY', 'HOURS', 'HOUR', 'MINUTES', 'MINUTE', 'SECONDS',
  'SECOND'];
export const CONSTANTS = ['true', 'false', 'null'];

// The commands followed by an entity type
const TYPED_COMMANDS = ['GET', 'FIND', 'NEW'];

const END = '(?![A-Za-z0-9_])';
const TYPE = '[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*';
const TIME = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(?:\\.\\d+)?Z';

const RE = {
  entityType: new RegExp(`^${TYPE}${END}`),
  timestamp: new RegExp(`^(?:[tT]?'${TIME}'|[tT]?"${TIME}"|${TIME})`),
  uri: /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s'"]*/,
  path: /^(?:\.{1,2}|~)?[A-Za-z0-9_.~\-*?]*\/[A-Za-z0-9_.~\-/*?]*/,
  rawString: /^[rR](?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")/,
  string: /^(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")/,
  // a quote left open while typing: the rest of the line (Pygments says Error)
  openString: /^[rR]?(?:'(?:[^'\\]|\\.)*|"(?:[^"\\]|\\.)*)$/,
  word: new RegExp(`^[A-Za-z_][A-Za-z0-9_]*${END}`),
  typedAttribute: new RegExp(`^${TYPE}(?=:[A-Za-z_])`),
  attribute: /^[A-Za-z_][A-Za-z0-9_]*/,
  number: /^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/,
  operator: /^(?:==|!=|>=|<=|=|>|<|\+)/,
  punctuation: /^[[\](){},:.*]/,
  name: /^[A-Za-z_][A-Za-z0-9_-]*/
};

/** Upper-cased word -> token, for the case-insensitive word lists. */
const WORDS = new Map<string, string>();
for (const [words, token] of [
  [COMMANDS, 'keyword'],
  [CLAUSES, 'keyword'],
  [OPERATOR_WORDS, 'operatorKeyword'],
  [RELATIONS, 'keyword'],
  [FUNCTIONS, 'variableName.standard'],
  [TIME_UNITS, 'unit'],
  [CONSTANTS.filter(word => word !== 'null'), 'bool'],
  [['null'], 'null']
] as [string[], string][]) {
  for (const word of words) {
    WORDS.set(word.toUpperCase(), token);
  }
}

export interface KestrelState {
  /** after GET / FIND / NEW and whitespace: an entity type may come (even on the next line) */
  typeExpected: boolean;
  /** after `type:` of `ipv4-addr:value`: the attribute */
  attributeNext: boolean;
  /** after `type` of `ipv4-addr:value`: the colon */
  colonNext: boolean;
}

function token(stream: StringStream, state: KestrelState): string | null {
  if (stream.eatSpace()) {
    return null;
  }
  if (state.colonNext) {
    state.colonNext = false;
    stream.next();
    state.attributeNext = true;
    return 'punctuation';
  }
  if (state.attributeNext) {
    state.attributeNext = false;
    stream.match(RE.attribute);
    return 'propertyName';
  }
  const typeExpected = state.typeExpected;
  state.typeExpected = false;

  if (stream.peek() === '#') {
    stream.skipToEnd();
    return 'comment';
  }
  // the entity type right after GET / FIND / NEW (the Pygments rule wants whitespace between)
  if (typeExpected && stream.match(RE.entityType)) {
    return 'typeName';
  }
  if (stream.match(RE.timestamp)) {
    return 'string.special';
  }
  if (stream.match(RE.uri) || stream.match(RE.path)) {
    return 'url';
  }
  if (stream.match(RE.rawString) || stream.match(RE.string) || stream.match(RE.openString)) {
    return 'string';
  }
  const word = stream.match(RE.word, false) as RegExpMatchArray | null;
  if (word) {
    const upper = word[0].toUpperCase();
    const kind = WORDS.get(upper);
    if (kind) {
      stream.match(RE.word);
      if (TYPED_COMMANDS.includes(upper)) {
        // the Pygments rule is `(GET|FIND|NEW)(\s+)(TYPE)\b`: only after whitespace
        state.typeExpected = /^\s/.test(stream.string.slice(stream.pos)) || stream.eol();
      }
      return kind;
    }
  }
  if (stream.match(RE.typedAttribute)) {
    state.colonNext = true;
    return 'typeName';
  }
  if (stream.match(RE.number)) {
    return 'number';
  }
  if (stream.match(RE.operator)) {
    return 'operator';
  }
  if (stream.match(RE.punctuation)) {
    return 'punctuation';
  }
  if (stream.match(RE.name)) {
    return null; // variables and attributes stay plain text
  }
  stream.next();
  return 'invalid';
}

export const kestrel: StreamParser<KestrelState> = {
  name: 'kestrel',
  startState: () => ({ typeExpected: false, attributeNext: false, colonNext: false }),
  copyState: (state: KestrelState) => ({ ...state }),
  token,
  languageData: {
    commentTokens: { line: '#' },
    closeBrackets: { brackets: ['(', '[', '{', "'", '"'] },
    wordChars: '-'
  }
};
