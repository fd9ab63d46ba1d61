/**
 * The gateway's check of a delivery as hosted QStash signs it: the SDK
 * Receiver's checks (worker/verify.ts), then the seed's expiration window on
 * `iat`, which the Receiver does not apply.
 */
import { DeliveryVerificationError, verifyDelivery } from '../worker/verify.js';
import type { SignatureSettings } from './gateway-config.js';

export interface SignedDelivery {
  /** The Upstash-Signature header, first value. */
  signature: string | undefined;
  rawBody: Uint8Array;
  /** The raw request target, compared with the token's `sub` when a public URL is set. */
  target: string;
}

/** Throws DeliveryVerificationError with the reason when the delivery is not signed as it must be. */
export async function verifySignature(settings: SignatureSettings, publicUrl: string | undefined, delivery: SignedDelivery, now: number): Promise<void> {
  const claims = await verifyDelivery({
    signature: delivery.signature,
    rawBody: delivery.rawBody,
    ...(publicUrl === undefined ? {} : { publicUrl, path: delivery.target }),
    keys: settings.keys,
    clockToleranceSeconds: settings.clockToleranceSeconds,
    now,
  });
  if (settings.expirationWindowSeconds === 0) return;
  if (typeof claims.iat !== 'number') {
    throw new DeliveryVerificationError('SIGNATURE_INVALID', 'the token has no iat claim, so its age cannot be checked against SIGNATURE_EXPIRATION_WINDOW');
  }
  const ageSeconds = now / 1000 - claims.iat;
  if (ageSeconds > settings.expirationWindowSeconds) {
    throw new DeliveryVerificationError(
      'SIGNATURE_EXPIRED',
      `the token was issued ${Math.floor(ageSeconds)} s ago, beyond SIGNATURE_EXPIRATION_WINDOW (${settings.expirationWindowSeconds} s)`,
    );
  }
  if (ageSeconds < -settings.clockToleranceSeconds) {
    throw new DeliveryVerificationError('SIGNATURE_NOT_YET_VALID', 'the token was issued in the future (iat), beyond the clock tolerance');
  }
}
