/** Settings key of the embedding model the memory pipeline uses. */
export const embeddingModelSettingKey = 'memory.embedding_model';
/** Settings key of the entity (token-classification) model. */
export const entityModelSettingKey = 'memory.entity_model';
/** Settings key of the rerank (cross-encoder) model. */
export const rerankModelSettingKey = 'memory.rerank_model';
