import test from 'ava';
import { cleanSubject, findTicketTags, formatTag } from '../src/mail/parse/subject.ts';

test('our tag is found anywhere in the subject, after any reply or forward prefixes', (t) => {
  for (const subject of [
    '[CIE#100001] Cannot upload',
    'Re: [CIE#100001] Cannot upload',
    'RE[2]: AW: SV: Fwd: WG: [CIE#100001] Cannot upload',
    'Re(3): Cannot upload [CIE#100001]',
    're: fw: something about [cie#100001] here',
    'Antw: VS: TR: [ CIE # 100001 ] spaced',
  ]) {
    t.deepEqual(findTicketTags(subject, 'CIE'), [100001], subject);
  }
});

test('other systems\' tags are never taken for ours', (t) => {
  for (const subject of ['[Ticket#100001] x', 'GGUS-Ticket-ID: #100001 x', '[ABC#100001] x', '[CIE-100001] x', 'CIE#100001 x', '[CIEX#100001] x', '[XCIE#100001] x']) {
    t.deepEqual(findTicketTags(subject, 'CIE'), [], subject);
  }
  t.deepEqual(findTicketTags('[Ticket#7] and [CIE#100002]', 'CIE'), [100002]);
});

test('a prefix with regex characters is matched literally', (t) => {
  t.deepEqual(findTicketTags('[A-B#12] x', 'A-B'), [12]);
  t.deepEqual(findTicketTags('[AxB#12] x', 'A.B'), []);
});

test('the clean subject has no prefixes and no tag', (t) => {
  t.is(cleanSubject('Re: AW: [CIE#100001]   Cannot   upload DICOM', 'CIE'), 'Cannot upload DICOM');
  t.is(cleanSubject('RE[2]: Fwd: Cannot upload', 'CIE'), 'Cannot upload');
  t.is(cleanSubject('Regarding the Reference nodes', 'CIE'), 'Regarding the Reference nodes');
  t.is(cleanSubject('[Ticket#5] other system', 'CIE'), '[Ticket#5] other system');
  t.is(formatTag('CIE', 100001), '[CIE#100001]');
});
