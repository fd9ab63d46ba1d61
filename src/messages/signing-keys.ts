/**
 * The token and signing keys in force. Configured values win; otherwise the
 * store's are used, and on the very first start fresh ones are generated and
 * stored, so restarts keep them.
 *
 * HAZARD: a value the operator configured is theirs to keep secret: what
 * start-up prints and writes to courier.env comes from `ownCredentials()`,
 * which never holds one.
 */
import type { Config } from '../core/config.js';
import { newSigningKey, newToken } from '../core/ids.js';
import type { CredentialStore, Credentials, SigningKeys } from '../store/port.js';

interface OwnCredentials {
  token?: string;
  currentSigningKey?: true;
  nextSigningKey?: true;
}

export class KeyRing {
  private keys: SigningKeys;
  /** Which values came from the environment rather than the store (and so cannot be rotated here). */
  readonly configured: { token: boolean; signingKeys: boolean };
  /** Each value that did not come from the environment (each signing key on its own: one may be configured alone). */
  private readonly own: OwnCredentials;

  private constructor(
    private readonly store: CredentialStore,
    readonly token: string,
    keys: SigningKeys,
    configured: { token: boolean; signingKeys: boolean },
    readonly generated: boolean,
    own: OwnCredentials,
  ) {
    this.keys = keys;
    this.configured = configured;
    this.own = own;
  }

  static async open(store: CredentialStore, config: Config): Promise<KeyRing> {
    const proposed: Credentials = {
      token: config.token ?? newToken(),
      currentSigningKey: config.currentSigningKey ?? newSigningKey(),
      nextSigningKey: config.nextSigningKey ?? newSigningKey(),
    };
    const stored = await store.ensureCredentials(proposed);
    // Our proposal was stored (this is the first start) and part of it was random, not configured.
    const insertedNow =
      stored.token === proposed.token &&
      stored.currentSigningKey === proposed.currentSigningKey &&
      stored.nextSigningKey === proposed.nextSigningKey;
    const generated = insertedNow && !(config.token && config.currentSigningKey && config.nextSigningKey);
    const signingKeysConfigured = config.currentSigningKey !== undefined && config.nextSigningKey !== undefined;
    return new KeyRing(
      store,
      config.token ?? stored.token,
      signingKeysConfigured
        ? { current: config.currentSigningKey!, next: config.nextSigningKey! }
        : { current: config.currentSigningKey ?? stored.currentSigningKey, next: config.nextSigningKey ?? stored.nextSigningKey },
      { token: config.token !== undefined, signingKeys: signingKeysConfigured },
      generated,
      {
        ...(config.token === undefined ? { token: stored.token } : {}),
        ...(config.currentSigningKey === undefined ? { currentSigningKey: true } : {}),
        ...(config.nextSigningKey === undefined ? { nextSigningKey: true } : {}),
      },
    );
  }

  /**
   * The credentials Courier holds itself (generated now or on an earlier
   * start), current after any rotation: what start-up may print and write.
   * Values from the environment are left out.
   */
  ownCredentials(): Partial<Credentials> {
    return {
      ...(this.own.token === undefined ? {} : { token: this.own.token }),
      ...(this.own.currentSigningKey ? { currentSigningKey: this.keys.current } : {}),
      ...(this.own.nextSigningKey ? { nextSigningKey: this.keys.next } : {}),
    };
  }

  current(): string {
    return this.keys.current;
  }

  signingKeys(): SigningKeys {
    return { ...this.keys };
  }

  /**
   * current ← next, next ← fresh (spec §10). With keys from the environment,
   * the rotation is in force until restart only, when the environment wins
   * again; the operator is told so in the log.
   */
  async rotate(): Promise<SigningKeys> {
    if (this.configured.signingKeys) {
      this.keys = { current: this.keys.next, next: newSigningKey() };
    } else {
      this.keys = await this.store.rotateSigningKeys(newSigningKey());
    }
    return this.signingKeys();
  }
}
