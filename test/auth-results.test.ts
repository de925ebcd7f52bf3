import test from 'ava';
import { trustedHopVerdict } from '../src/mail/auth/auth-results.ts';

const TRUSTED = ['mx.helpdesk.example'];

test('the topmost Authentication-Results of a trusted authserv-id is read: version, comments and case do not matter', (t) => {
  const verdict = trustedHopVerdict(
    [
      'Authentication-Results: mx.untrusted.example; dmarc=pass header.from=uni.example',
      'Authentication-Results: MX.Helpdesk.Example 1 (our relay);\r\n spf=softfail (not permitted) smtp.mailfrom=a@uni.example;\r\n dkim=fail header.d=other.example;\r\n dkim=pass (2048-bit key) header.d=Uni.Example header.i=@uni.example;\r\n dmarc=pass (p=REJECT) header.from=uni.example; arc=none',
      'Authentication-Results: mx.helpdesk.example; dmarc=fail header.from=uni.example',
    ],
    TRUSTED,
  );
  t.deepEqual(verdict, { authservId: 'mx.helpdesk.example', spf: 'softfail', dkim: 'pass', dkimDomains: ['uni.example'], dmarc: 'pass', dmarcDomain: 'uni.example', arc: 'none' });
});

test('no trusted hop configured, none present, or an unreadable header: no verdict', (t) => {
  const line = 'Authentication-Results: mx.helpdesk.example; dmarc=pass header.from=uni.example';
  t.is(trustedHopVerdict([line], []), null);
  t.is(trustedHopVerdict(['Authentication-Results: mx.elsewhere.example; dmarc=pass header.from=uni.example'], TRUSTED), null);
  t.is(trustedHopVerdict(['Authentication-Results: ;;((('], TRUSTED), null);
  // "none": the hop checked nothing.
  t.like(trustedHopVerdict(['Authentication-Results: mx.helpdesk.example; none'], TRUSTED), { dmarc: 'none', dmarcDomain: null, spf: 'none', dkim: 'none' });
});
