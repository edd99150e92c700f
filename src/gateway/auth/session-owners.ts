/**
 * Which principal opened each client session. A session id is a bearer secret of sorts: presented by
 * anyone else it is answered 404, as if it did not exist, so it can neither be used nor confirmed.
 * Entries are forgotten when the session ends (DELETE) or when no version of the server holds it any
 * more (idle reaping, drains, restarts), which `prune` checks against the fleet.
 */
/** The owner of a contested session: no principal's id is empty. */
const NO_ONE = '';

export class SessionOwners {
  private readonly owners = new Map<string, { server: string; principal: string }>();

  /**
   * A session id handed out again while its owner is known (a remote server that gives out the same id
   * twice, by fault or by design) belongs to no one from then on: the second principal must not take the
   * first one's session over, nor share it.
   */
  record(sessionId: string, server: string, principal: string): void {
    const owner = this.owners.get(sessionId);
    const contested = owner !== undefined && (owner.server !== server || owner.principal !== principal);
    this.owners.set(sessionId, { server, principal: contested ? NO_ONE : principal });
  }

  /**
   * Only the principal that opened the session, on its server. A session whose owner is not known is
   * refused too: a remote server may still hold one the proxy forgot (unused past idleTimeout, opened
   * before a restart or before access control), and letting anyone use it would hand it to whoever has its
   * id. Its client gets 404 and initializes again, as the transport specifies.
   */
  mayUse(sessionId: string, server: string, principal: string): boolean {
    const owner = this.owners.get(sessionId);
    return (
      owner !== undefined && owner.server === server && owner.principal === principal && principal !== NO_ONE
    );
  }

  forget(sessionId: string): void {
    this.owners.delete(sessionId);
  }

  prune(isLive: (server: string, sessionId: string) => boolean): void {
    for (const [id, { server }] of this.owners) if (!isLive(server, id)) this.owners.delete(id);
  }

  get size(): number {
    return this.owners.size;
  }
}
