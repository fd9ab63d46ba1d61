/**
 * The `Upstash-Retry-Delay` language: a delay in milliseconds computed from
 * `retried` (0 before the first retry). The header is user input that we run
 * on every retry, so it is parsed by hand into closures, never handed to
 * eval/Function, and names are looked up in a Map (so `constructor` or
 * `__proto__` cannot reach Object.prototype).
 *
 * Grammar (usual precedence, left-associative):
 *   expr    := term (('+' | '-') term)*
 *   term    := unary (('*' | '/') unary)*
 *   unary   := '-' unary | primary
 *   primary := number | 'retried' | name '(' [expr (',' expr)*] ')' | '(' expr ')'
 *   number  := digits ['.' digits]
 */

export const MAX_EXPRESSION_LENGTH = 512;
/** Bounds recursion in the parser and in evaluation; real policies nest 2 or 3 deep. */
export const MAX_EXPRESSION_DEPTH = 32;

export class RetryDelayExpressionError extends Error {
  /** Offset in the source the error is about, when there is one. */
  readonly position: number | undefined;

  /** Reads as `<problem> at position <n><detail>`, e.g. `expected ")" at position 2, found end of expression`. */
  constructor(problem: string, position?: number, detail = '') {
    super(position === undefined ? problem : `${problem} at position ${position}${detail}`);
    this.name = 'RetryDelayExpressionError';
    this.position = position;
  }
}

export interface RetryDelayExpression {
  readonly source: string;
  /** May return NaN or ±Infinity; the caller decides what that means. */
  evaluate(retried: number): number;
}

type Evaluate = (retried: number) => number;

// Go's math.Round rounds half away from zero; JS's rounds half up. QStash is
// Go, so round(-2.5) must be -3 here.
const goRound = (x: number): number => Math.sign(x) * Math.round(Math.abs(x));

type Builtin = { arity: 1; fn: (x: number) => number } | { arity: 2; fn: (x: number, y: number) => number };

const FUNCTIONS: ReadonlyMap<string, Builtin> = new Map<string, Builtin>([
  ['pow', { arity: 2, fn: Math.pow }],
  ['exp', { arity: 1, fn: Math.exp }],
  ['sqrt', { arity: 1, fn: Math.sqrt }],
  ['abs', { arity: 1, fn: Math.abs }],
  ['floor', { arity: 1, fn: Math.floor }],
  ['ceil', { arity: 1, fn: Math.ceil }],
  ['round', { arity: 1, fn: goRound }],
  ['min', { arity: 2, fn: (x, y) => Math.min(x, y) }],
  ['max', { arity: 2, fn: (x, y) => Math.max(x, y) }],
]);

type Token =
  | { kind: 'number'; value: number; text: string; pos: number }
  | { kind: 'name'; text: string; pos: number }
  | { kind: '+' | '-' | '*' | '/' | '(' | ')' | ','; text: string; pos: number }
  | { kind: 'end'; text: ''; pos: number };

const NUMBER = /\d+(?:\.\d+)?/y;
const NAME = /[A-Za-z_][A-Za-z0-9_]*/y;
const WHITESPACE = /[ \t\r\n]+/y;
const PUNCTUATION = new Set(['+', '-', '*', '/', '(', ')', ',']);

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let pos = 0;
  const sticky = (re: RegExp): string | undefined => {
    re.lastIndex = pos;
    return re.exec(source)?.[0];
  };
  while (pos < source.length) {
    const space = sticky(WHITESPACE);
    if (space !== undefined) {
      pos += space.length;
      continue;
    }
    const number = sticky(NUMBER);
    if (number !== undefined) {
      tokens.push({ kind: 'number', value: Number(number), text: number, pos });
      pos += number.length;
      continue;
    }
    const name = sticky(NAME);
    if (name !== undefined) {
      tokens.push({ kind: 'name', text: name, pos });
      pos += name.length;
      continue;
    }
    const char = source[pos]!;
    if (PUNCTUATION.has(char)) {
      tokens.push({ kind: char as '+', text: char, pos });
      pos += 1;
      continue;
    }
    // Whole code point, so an emoji is reported as itself, not half a surrogate pair.
    const junk = String.fromCodePoint(source.codePointAt(pos)!);
    throw new RetryDelayExpressionError(`unexpected character ${JSON.stringify(junk)}`, pos);
  }
  tokens.push({ kind: 'end', text: '', pos: source.length });
  return tokens;
}

function describeToken(token: Token): string {
  return token.kind === 'end' ? 'end of expression' : JSON.stringify(token.text);
}

class Parser {
  private index = 0;
  private depth = 0;

  constructor(private readonly tokens: Token[]) {}

  parseAll(): Evaluate {
    const result = this.expr();
    const rest = this.peek();
    if (rest.kind !== 'end') {
      throw new RetryDelayExpressionError(`unexpected ${describeToken(rest)}`, rest.pos, ', expected an operator');
    }
    return result;
  }

  private peek(): Token {
    return this.tokens[this.index]!;
  }

  private next(): Token {
    const token = this.peek();
    if (token.kind !== 'end') this.index += 1;
    return token;
  }

  private expect(kind: ')' | '(' | ','): void {
    const token = this.peek();
    if (token.kind !== kind) {
      throw new RetryDelayExpressionError(`expected "${kind}"`, token.pos, `, found ${describeToken(token)}`);
    }
    this.index += 1;
  }

  private nested<T>(pos: number, parse: () => T): T {
    if (++this.depth > MAX_EXPRESSION_DEPTH) {
      throw new RetryDelayExpressionError(`expression nests deeper than ${MAX_EXPRESSION_DEPTH} levels`, pos);
    }
    const result = parse();
    this.depth -= 1;
    return result;
  }

  private expr(): Evaluate {
    let left = this.term();
    for (let op = this.peek().kind; op === '+' || op === '-'; op = this.peek().kind) {
      this.next();
      const a = left;
      const b = this.term();
      left = op === '+' ? (r) => a(r) + b(r) : (r) => a(r) - b(r);
    }
    return left;
  }

  private term(): Evaluate {
    let left = this.unary();
    for (let op = this.peek().kind; op === '*' || op === '/'; op = this.peek().kind) {
      this.next();
      const a = left;
      const b = this.unary();
      left = op === '*' ? (r) => a(r) * b(r) : (r) => a(r) / b(r);
    }
    return left;
  }

  private unary(): Evaluate {
    const token = this.peek();
    if (token.kind !== '-') return this.primary();
    this.next();
    const operand = this.nested(token.pos, () => this.unary());
    return (r) => -operand(r);
  }

  private primary(): Evaluate {
    const token = this.next();
    switch (token.kind) {
      case 'number': {
        const value = token.value;
        return () => value;
      }
      case '(': {
        const inner = this.nested(token.pos, () => this.expr());
        this.expect(')');
        return inner;
      }
      case 'name':
        if (this.peek().kind === '(') return this.call(token);
        if (token.text === 'retried') return (r) => r;
        throw new RetryDelayExpressionError(`unknown variable "${token.text}"`, token.pos, ' (only "retried" is defined)');
      default:
        throw new RetryDelayExpressionError(
          `unexpected ${describeToken(token)}`,
          token.pos,
          ', expected a number, "retried", a function call or "("',
        );
    }
  }

  private call(name: Token): Evaluate {
    const builtin = FUNCTIONS.get(name.text);
    if (builtin === undefined) throw new RetryDelayExpressionError(`unknown function "${name.text}"`, name.pos);
    this.expect('(');
    const args = this.nested(name.pos, () => {
      const parsed: Evaluate[] = [];
      if (this.peek().kind === ')') return parsed;
      parsed.push(this.expr());
      while (this.peek().kind === ',') {
        this.next();
        parsed.push(this.expr());
      }
      return parsed;
    });
    this.expect(')');
    const [a, b] = args;
    if (args.length !== builtin.arity || a === undefined) {
      const plural = builtin.arity === 1 ? '' : 's';
      throw new RetryDelayExpressionError(
        name.text,
        name.pos,
        ` expects ${builtin.arity} argument${plural}, got ${args.length}`,
      );
    }
    if (builtin.arity === 1) {
      const fn = builtin.fn;
      return (r) => fn(a(r));
    }
    const fn = builtin.fn;
    const second = b!; // arity 2 was checked above
    return (r) => fn(a(r), second(r));
  }
}

/** Parses once at publish time (a parse error is a 400); `evaluate` is then cheap and cannot throw. */
export function compileRetryDelayExpression(source: string): RetryDelayExpression {
  if (source.length > MAX_EXPRESSION_LENGTH) {
    throw new RetryDelayExpressionError(
      `expression is ${source.length} characters long, the limit is ${MAX_EXPRESSION_LENGTH}`,
    );
  }
  const tokens = tokenize(source);
  if (tokens.length === 1) throw new RetryDelayExpressionError('expression is empty');
  const evaluate = new Parser(tokens).parseAll();
  return { source, evaluate };
}
