// Meteor's paraphrase table (paraphrase-en.gz, uncompressed here): groups of three lines,
// probability / phrase / paraphrase, stored as Meteor's ParaphraseTransducer stores them: a
// vocabulary of word ids and a trie from reference phrases to the indices of their paraphrases.
import { MetricInputError } from '../../errors.js';

interface TrieNode {
  next: Map<number, TrieNode>;
  emit: number[];
}

export class ParaphraseTable {
  readonly vocab = new Map<string, number>();
  readonly paraphrases: Int32Array[] = [];
  private readonly root: TrieNode = { next: new Map(), emit: [] };

  private id(word: string): number {
    let i = this.vocab.get(word);
    if (i === undefined) {
      i = this.vocab.size;
      this.vocab.set(word, i);
    }
    return i;
  }

  /** Adds one entry (phrase -> paraphrase). */
  add(phrase: string, paraphrase: string): void {
    const ref = phrase
      .split(/[ \t\n\r\f]+/)
      .filter(Boolean)
      .map((w) => this.id(w));
    const par = Int32Array.from(
      paraphrase
        .split(/[ \t\n\r\f]+/)
        .filter(Boolean)
        .map((w) => this.id(w)),
    );
    let node = this.root;
    for (const w of ref) {
      let n = node.next.get(w);
      if (!n) node.next.set(w, (n = { next: new Map(), emit: [] }));
      node = n;
    }
    node.emit.push(this.paraphrases.length);
    this.paraphrases.push(par);
  }

  get size(): number {
    return this.paraphrases.length;
  }

  /** [phrase length, paraphrase index] for every table phrase starting at words[start]. */
  pathsFrom(words: readonly number[], start: number): [number, number][] {
    const out: [number, number][] = [];
    let node: TrieNode | undefined = this.root;
    for (let i = 0; i < words.length - start; i++) {
      node = node.next.get(words[start + i]);
      if (!node) break;
      for (const e of node.emit) out.push([i + 1, e]);
    }
    return out;
  }
}

/** Parses the uncompressed text of a Meteor paraphrase table; errors name the line. */
export function parseParaphraseTable(text: string, file = 'paraphrase table'): ParaphraseTable {
  const lines = text.split(/\r?\n/);
  if (lines.at(-1) === '') lines.pop();
  if (lines.length === 0) throw new MetricInputError(`${file}: no paraphrases (the table is empty)`);
  if (lines.length % 3 !== 0)
    throw new MetricInputError(
      `${file}: ${lines.length} lines is not a multiple of 3 (probability, phrase, paraphrase)`,
    );
  const table = new ParaphraseTable();
  for (let i = 0; i < lines.length; i += 3) {
    if (!Number.isFinite(Number(lines[i])))
      throw new MetricInputError(
        `${file}: line ${i + 1} should be a probability, got ${JSON.stringify(lines[i].slice(0, 40))}`,
      );
    table.add(lines[i + 1], lines[i + 2]);
  }
  return table;
}
