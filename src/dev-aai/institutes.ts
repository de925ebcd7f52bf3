/**
 * The Identity Providers offered on the stand-in's "Choose your Identity Provider" page: a
 * few universities and the social / hostel logins LS AAI also offers. Choosing one only
 * changes the sign-in page's heading; every test user can sign in at every one.
 */
export interface Institute {
  /** Stable slug, used in URLs and the "last used" cookie. */
  readonly id: string;
  readonly name: string;
}

export const INSTITUTES: readonly Institute[] = Object.freeze([
  { id: 'university-of-barcelona', name: 'University of Barcelona' },
  { id: 'charite-berlin', name: 'Charité – Universitätsmedizin Berlin' },
  { id: 'university-of-oslo', name: 'University of Oslo' },
  { id: 'karolinska-institutet', name: 'Karolinska Institutet' },
  { id: 'sorbonne-universite', name: 'Sorbonne Université' },
  { id: 'orcid', name: 'ORCID' },
  { id: 'google', name: 'Google' },
  { id: 'lifesciencehostel', name: 'LifeScienceHostel' },
]);

/** Lower case without accents, so "charite" finds "Charité". */
function folded(text: string): string {
  return text.normalize('NFD').replace(/\p{Diacritic}/gu, '').toLowerCase();
}

/** Case- and accent-insensitive substring search; an empty query lists them all. */
export function searchInstitutes(query: string): Institute[] {
  const q = folded(query.trim());
  return INSTITUTES.filter((i) => folded(i.name).includes(q));
}

export function findInstitute(id: string | undefined): Institute | undefined {
  return id === undefined ? undefined : INSTITUTES.find((i) => i.id === id);
}
