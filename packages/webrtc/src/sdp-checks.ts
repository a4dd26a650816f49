import { InvalidRequestError } from '@tabagent/values';

/** mDNS host names (`<uuid>.local`) that browsers put in place of their IP addresses. */
const mdnsCandidate = /^a=candidate:\S+ \d+ \S+ \d+ [^\s]+\.local \d+ /iu;

const candidateLine = /^candidate:\S{1,64} \d{1,5} (?:udp|tcp) \d{1,10} \S{1,255} \d{1,5} typ (?:host|srflx|prflx|relay)(?: .*)?$/iu;

function lines(sdp: string): string[] {
  return sdp.split(/\r?\n/u).filter((line) => line.length > 0);
}

/**
 * Checks that an SDP from a client is one this server can use (a data-channel session with ICE
 * credentials and a DTLS fingerprint) before the WebRTC library sees it, so a bad one is a clear
 * 400 rather than whatever the library makes of it.
 */
export function checkRemoteSdp(sdp: string, kind: 'offer' | 'answer'): void {
  const all = lines(sdp);
  const problems: string[] = [];
  if (all[0] !== 'v=0') problems.push('it must start with v=0');
  if (!all.some((line) => /^m=application \d+ (?:UDP\/DTLS\/SCTP|DTLS\/SCTP) webrtc-datachannel/u.test(line)))
    problems.push('it has no data channel section (m=application ... webrtc-datachannel)');
  if (!all.some((line) => line.startsWith('a=ice-ufrag:'))) problems.push('it has no a=ice-ufrag');
  if (!all.some((line) => line.startsWith('a=ice-pwd:'))) problems.push('it has no a=ice-pwd');
  if (!all.some((line) => /^a=fingerprint:sha-(?:1|224|256|384|512) [0-9A-F:]+$/iu.test(line))) problems.push('it has no a=fingerprint');
  if (problems.length > 0) {
    throw new InvalidRequestError(`The SDP ${kind} is not usable: ${problems.join('; ')}`, {
      issues: problems.map((message) => ({ path: 'sdp', message })),
    });
  }
}

/** Drops the browser's mDNS (`.local`) candidates: the server neither resolves them nor needs them. */
export function withoutMdnsCandidates(sdp: string): string {
  return sdp
    .split('\r\n')
    .filter((line) => !mdnsCandidate.test(line))
    .join('\r\n');
}

/** Keeps only the server's loopback candidates in its SDP (it listens on loopback only). */
export function onlyLoopbackCandidates(sdp: string): string {
  return sdp
    .split('\r\n')
    .filter((line) => !line.startsWith('a=candidate:') || / 127\.\d+\.\d+\.\d+ \d+ typ /u.test(line) || / ::1 \d+ typ /u.test(line))
    .join('\r\n');
}

/** The `a=candidate` lines of an SDP as candidate objects (one data-channel section: mid of the first m= line). */
export function candidatesOf(sdp: string): { candidate: string; sdp_mid: string | null; sdp_mline_index: number | null }[] {
  const mid = /^a=mid:(\S+)/mu.exec(sdp)?.[1] ?? null;
  return lines(sdp)
    .filter((line) => line.startsWith('a=candidate:'))
    .map((line) => ({ candidate: line.slice(2), sdp_mid: mid, sdp_mline_index: 0 }));
}

/** Validates one trickled candidate and strips a leading `a=`; returns undefined for an mDNS one (dropped). */
export function parseCandidate(raw: string): string | undefined {
  const candidate = raw.startsWith('a=') ? raw.slice(2) : raw;
  if (!candidateLine.test(candidate)) {
    throw new InvalidRequestError(
      'Not an ICE candidate line: expected "candidate:<foundation> <component> <udp|tcp> <priority> <address> <port> typ <type> ..."',
      {
        issues: [{ path: 'candidate', message: 'Not an ICE candidate line' }],
      },
    );
  }
  if (/^candidate:\S+ \d+ \S+ \d+ \S+\.local /iu.test(candidate)) return undefined;
  return candidate;
}
