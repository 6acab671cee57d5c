// The error every filter compile failure throws: a message naming the column, and the column.

export class FilterError extends Error {
  /** 1-based column of the offending token (0 when the error is about the whole source). */
  readonly column: number;
  constructor(message: string, column = 0) {
    super(message);
    this.name = 'FilterError';
    this.column = column;
  }
}
