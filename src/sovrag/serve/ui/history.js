// Conversations, kept in localStorage so they outlive a reload, a new tab and a browser restart: one per tenant
// and collection ("sovrag.chat.t<tenant id>.<collection>"), so another tenant signing in on this browser never
// sees them. Signing out keeps them; "Clear conversation" and deleting the collection remove them.

const STORED_MESSAGES = 40; // per collection
const PREFIX = 'sovrag.chat.';

const key = (tenantId, col) => `${PREFIX}t${tenantId}.${col}`;

/** A local id for a stored turn, so feedback given later finds it again (crypto.randomUUID needs https). */
export const turnId = () => `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`;

export function loadHistory(tenantId, col) {
  if (tenantId === null || tenantId === undefined || !col) return [];
  try {
    const turns = JSON.parse(localStorage.getItem(key(tenantId, col)));
    return Array.isArray(turns) ? turns.filter((t) => t && (t.role === 'user' || t.role === 'assistant')) : [];
  } catch {
    return [];
  }
}

/** Keep the newest messages; when the browser's storage is full, drop the oldest question and answer until it fits. */
export function saveHistory(tenantId, col, history) {
  let kept = history.slice(-STORED_MESSAGES);
  while (kept.length) {
    try { localStorage.setItem(key(tenantId, col), JSON.stringify(kept)); return; } catch { kept = kept.slice(2); }
  }
  forgetHistory(tenantId, col);
}

export function forgetHistory(tenantId, col) {
  try { localStorage.removeItem(key(tenantId, col)); } catch { /* storage disabled */ }
}

/** Merge `patch` into the stored turn with this local id (nothing when it is gone: cleared, or trimmed). */
export function updateTurn(tenantId, col, uid, patch) {
  if (!uid) return;
  const history = loadHistory(tenantId, col);
  const turn = history.find((t) => t.uid === uid);
  if (!turn) return;
  Object.assign(turn, patch);
  saveHistory(tenantId, col, history);
}
