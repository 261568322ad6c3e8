import { createHash, randomBytes } from 'node:crypto';
import { newId } from '../../core/ids.ts';
import type { SqlExecutor } from '../driver.ts';

export interface TokenInfo {
  id: string;
  name: string;
  role: 'admin' | 'worker' | 'user';
  tenant: string | null;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Creates an API token; only its hash is stored, the plaintext is returned once. */
export async function createToken(db: SqlExecutor, name: string, role: TokenInfo['role'], tenant: string | null, now: number): Promise<{ info: TokenInfo; token: string }> {
  const token = `gty_${randomBytes(24).toString('base64url')}`;
  const id = newId('tok');
  await db.run('INSERT INTO tokens (id, token_hash, name, role, tenant, created_at) VALUES (?, ?, ?, ?, ?, ?)', [
    id, hashToken(token), name, role, tenant, now,
  ]);
  return { info: { id, name, role, tenant }, token };
}

export async function findToken(db: SqlExecutor, token: string): Promise<TokenInfo | null> {
  const r = (await db.query('SELECT id, name, role, tenant FROM tokens WHERE token_hash = ?', [hashToken(token)]))[0];
  return r ? { id: String(r.id), name: String(r.name), role: r.role as TokenInfo['role'], tenant: r.tenant === null ? null : String(r.tenant) } : null;
}

export async function countTokens(db: SqlExecutor): Promise<number> {
  const r = await db.query<{ n: number }>('SELECT COUNT(*) AS n FROM tokens');
  return Number(r[0]?.n ?? 0);
}
