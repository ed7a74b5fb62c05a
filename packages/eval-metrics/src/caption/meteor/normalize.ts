// Meteor 1.5's Normalizer.normalizeLine for English with punctuation kept (the `-norm` option the
// COCO wrapper passes): a Moses-tokenizer variant that also splits dashes between words and
// English contractions (metrics-spec §6).

const ALPHA = 'A-Za-zŠŽšžŸÀ-ÖØ-öø-ž';
const ALNUM = `0-9${ALPHA}`;

const SEP_OTHER = new RegExp(`([^${ALNUM} \\t\\n\\x0B\\f\\r\\.'\`,\\-‘’])`, 'g');
const MULTI_DOT = /\.([.]+)/g;
const MULTI_DOT2 = /DOTMULTI\.([^.])/g;
const COMMA = /([^0-9]),([^0-9])/g;
const COMMA2 = /([0-9]),([^0-9])/g;
const COMMA3 = /([^0-9]),([0-9])/g;
const QUOTE = /[`‘’]/g;
const QUOTE2 = /[“”]|''/g;
const RM_DASH = new RegExp(`([${ALNUM}.])[-]([${ALNUM}])`, 'g');
const CONT1 = new RegExp(`([^${ALPHA}])[']([^${ALPHA}])`, 'g');
const CONT2 = new RegExp(`([^${ALPHA}0-9])[']([${ALPHA}])`, 'g');
const CONT3 = new RegExp(`([${ALPHA}])[']([^${ALPHA}])`, 'g');
const CONT4 = new RegExp(`([${ALPHA}])[']([${ALPHA}])`, 'g');
const CONT5 = /([0-9])[']([s])/g;
const NBP_HAS_ALPHA = new RegExp(`[${ALPHA}]`);

/** Moses' English non-breaking prefixes (Rev 3881): 1 = any context, 2 = only before a number. */
const NBP = new Map<string, number>([
  ...'ABCDEFGHIJKLMNOPQRSTUVWXYZ'.split('').map((c) => [c, 1] as [string, number]),
  ...(
    'Adj Adm Adv Asst Bart Bldg Brig Bros Capt Cmdr Col Comdr Con Corp Cpl DR Dr Drs Ens Gen Gov Hon Hr Hosp Insp Lt MM MR MRS MS ' +
    'Maj Messrs Mlle Mme Mr Mrs Ms Msgr Op Ord Pfc Ph Prof Pvt Rep Reps Res Rev Rt Sen Sens Sfc Sgt Sr St Supt Surg v vs i.e rev e.g ' +
    'Nos Nr Jan Feb Mar Apr Jun Jul Aug Sep Oct Nov Dec'
  )
    .split(' ')
    .map((w) => [w, 1] as [string, number]),
  ['No', 2],
  ['Art', 2],
  ['pp', 2],
]);

const replaceAllLiteral = (s: string, from: string, to: string) => s.split(from).join(to);

export function meteorNormalize(line: string): string {
  let w = ` ${line} `;
  w = w.replace(SEP_OTHER, ' $1 ');
  w = w.replace(MULTI_DOT, ' DOTMULTI$1');
  while (w.includes('DOTMULTI.')) {
    w = w.replace(MULTI_DOT2, 'DOTDOTMULTI $1');
    w = replaceAllLiteral(w, 'DOTMULTI.', 'DOTDOTMULTI');
  }
  w = w.replace(COMMA, '$1 , $2').replace(COMMA2, '$1 , $2').replace(COMMA3, '$1 , $2');
  w = w.replace(QUOTE, "'").replace(QUOTE2, ' " ');
  w = replaceAllLiteral(w, '–', '-');
  w = replaceAllLiteral(w, '--', '-');
  w = w.replace(RM_DASH, '$1 $2');
  w = w
    .replace(CONT1, "$1 ' $2")
    .replace(CONT2, "$1 ' $2")
    .replace(CONT3, "$1 ' $2")
    .replace(CONT4, "$1 '$2")
    .replace(CONT5, "$1 '$2");
  const words = w.split(/[ \t\n\r\f]+/).filter(Boolean); // java.util.StringTokenizer
  let out = '';
  for (let i = 0; i < words.length; i++) {
    const word = words[i];
    if (word.length > 1 && word.endsWith('.')) {
      const pre = word.slice(0, -1);
      const type = NBP.get(pre);
      if (pre.includes('.') && NBP_HAS_ALPHA.test(pre)) out += replaceAllLiteral(word, '.', '');
      else if (type === 1 || (i < words.length - 1 && /^[a-z]/.test(words[i + 1]))) out += word;
      else if (type === 2 && i < words.length - 1 && /^[0-9]+/.test(words[i + 1])) out += word;
      else out += `${pre} .`;
    } else {
      out += word;
    }
    out += ' ';
  }
  while (out.includes('DOTDOTMULTI')) out = replaceAllLiteral(out, 'DOTDOTMULTI', 'DOTMULTI.');
  out = replaceAllLiteral(out, 'DOTMULTI', '.');
  return out.replace(/ +/g, ' ').trim();
}
