import { z } from 'zod';
import { defineRoute } from '../route-definition.js';

export const WebRtcSessionState = z.enum(['waiting_for_answer', 'connecting', 'connected', 'disconnected', 'closed']);

export const WebRtcOfferRequest = z
  .object({
    sdp: z
      .string()
      .min(1)
      .max(100_000)
      .optional()
      .describe(
        "The client's SDP offer, with a data channel; the server answers it. Without it the server makes the offer (with a `tabagent` channel) and the client sends its answer to `webrtc.answer`.",
      ),
    peer_id: z.string().min(1).max(200).optional().describe("A label of the client's choosing, shown in the session's state."),
  })
  .meta({ id: 'WebRtcOfferRequest' });
export const WebRtcIceCandidate = z
  .object({ candidate: z.string(), sdp_mid: z.string().nullable(), sdp_mline_index: z.number().int().nonnegative().nullable() })
  .meta({ id: 'WebRtcIceCandidate' });
export const WebRtcOfferResponse = z
  .object({
    session_id: z.string(),
    created_at: z.string(),
    state: WebRtcSessionState,
    type: z.enum(['answer', 'offer']).describe("What `sdp` is: the server's answer to the client's offer, or the server's own offer."),
    sdp: z.string().describe("The server's SDP, with all its ICE candidates (the server never trickles)."),
    ice_candidates: z.array(WebRtcIceCandidate).describe('The candidates in `sdp`, for clients that add them one by one.'),
    max_message_size: z.number().int().positive().describe('Largest data-channel message either side sends; larger replies come as continuation parts.'),
  })
  .meta({ id: 'WebRtcOfferResponse' });

/** A session id as the server makes them (a UUID, 36 characters); longer input is refused, never echoed back. */
const SessionId = z.string().min(1).max(64);

export const WebRtcAnswerRequest = z.object({ session_id: SessionId, sdp: z.string().min(1).max(100_000) }).meta({ id: 'WebRtcAnswerRequest' });
export const WebRtcIceRequest = z
  .object({
    session_id: SessionId,
    candidate: z.string().max(10_000).describe('One `candidate:...` line (with or without `a=`); an empty string ends the candidates.'),
    sdp_mid: z.string().nullable().optional(),
    sdp_mline_index: z.number().int().nonnegative().nullable().optional(),
  })
  .meta({ id: 'WebRtcIceRequest' });
export const WebRtcAckResponse = z.object({ success: z.literal(true), session_id: z.string() }).meta({ id: 'WebRtcAckResponse' });

export const WebRtcSessionRequest = z.object({ session_id: SessionId }).meta({ id: 'WebRtcSessionRequest' });
export const WebRtcSessionResponse = z
  .object({
    session_id: z.string(),
    peer_id: z.string().nullable(),
    state: WebRtcSessionState,
    created_at: z.string(),
    last_activity: z.string(),
    data_channel_open: z.boolean(),
    ice_candidate_count: z.number().int().nonnegative().describe("The client's candidates received through `webrtc.ice`."),
    calls_in_flight: z.number().int().nonnegative(),
    ended_because: z
      .string()
      .nullable()
      .describe(
        'Why an ended session ended (the peer closed the channel, ICE or DTLS failed and when, no consent checks, never connected, idle); null while open.',
      ),
  })
  .meta({ id: 'WebRtcSessionResponse' });

export const webrtcOfferRoute = defineRoute({
  id: 'webrtc.offer',
  method: 'POST',
  path: '/v1/webrtc/offer',
  summary: "Open a WebRTC session from the client's offer; returns the server's answer",
  tags: ['webrtc'],
  request: WebRtcOfferRequest,
  response: WebRtcOfferResponse,
});

export const webrtcAnswerRoute = defineRoute({
  id: 'webrtc.answer',
  method: 'POST',
  path: '/v1/webrtc/answer',
  summary: "Answer the server's offer (sessions opened without an SDP)",
  tags: ['webrtc'],
  request: WebRtcAnswerRequest,
  response: WebRtcAckResponse,
});

export const webrtcIceRoute = defineRoute({
  id: 'webrtc.ice',
  method: 'POST',
  path: '/v1/webrtc/ice',
  summary: 'Add a remote ICE candidate',
  tags: ['webrtc'],
  request: WebRtcIceRequest,
  response: WebRtcAckResponse,
});

export const webrtcSessionRoute = defineRoute({
  id: 'webrtc.session',
  method: 'GET',
  path: '/v1/webrtc/session/{session_id}',
  summary: 'State of a WebRTC session',
  tags: ['webrtc'],
  request: WebRtcSessionRequest,
  response: WebRtcSessionResponse,
});
