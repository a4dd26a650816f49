import { InvalidRequestError } from '@tabagent/values';

/** A 400 about one request field, its message also the field's issue: what every codec refuses with. */
export function refuseField(path: string, message: string): never {
  throw new InvalidRequestError(message, { issues: [{ path, message }] });
}
