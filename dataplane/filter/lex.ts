// The filter language's tokens: words (keywords and values, original case kept for
// messages), parentheses, not/and/or in either spelling, and length comparisons.

import { FilterError } from './error';

export const T_WORD = 0;
export const T_LPAREN = 1;
export const T_RPAREN = 2;
export const T_NOT = 3;
export const T_AND = 4;
export const T_OR = 5;
export const T_CMP = 6;
export const T_EOF = 7;

export interface Token {
  type: number;
  /** The source text (original case). */
  text: string;
  /** Lower-cased text (keywords compare against this). */
  lower: string;
  /** 1-based. */
  col: number;
}

const WORD_CHAR = /[A-Za-z0-9_.:/-]/;

export function lex(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const n = src.length;
  const push = (type: number, text: string, col: number): void => {
    out.push({ type, text, lower: text.toLowerCase(), col });
  };
  while (i < n) {
    const c = src[i];
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') { i++; continue; }
    const col = i + 1;
    const two = src.slice(i, i + 2);
    if (two === '&&') { push(T_AND, two, col); i += 2; continue; }
    if (two === '||') { push(T_OR, two, col); i += 2; continue; }
    if (two === '<=' || two === '>=' || two === '==' || two === '!=') { push(T_CMP, two, col); i += 2; continue; }
    if (c === '<' || c === '>' || c === '=') { push(T_CMP, c, col); i++; continue; }
    if (c === '!') { push(T_NOT, c, col); i++; continue; }
    if (c === '(') { push(T_LPAREN, c, col); i++; continue; }
    if (c === ')') { push(T_RPAREN, c, col); i++; continue; }
    if (WORD_CHAR.test(c)) {
      let j = i + 1;
      while (j < n && WORD_CHAR.test(src[j])) j++;
      const text = src.slice(i, j);
      const lower = text.toLowerCase();
      const type = lower === 'and' ? T_AND : lower === 'or' ? T_OR : lower === 'not' ? T_NOT : T_WORD;
      push(type, text, col);
      i = j;
      continue;
    }
    const shown = c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f
      ? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}` : c;
    throw new FilterError(`filter: unexpected character '${shown}' at column ${col}`, col);
  }
  out.push({ type: T_EOF, text: '', lower: '', col: n + 1 });
  return out;
}
