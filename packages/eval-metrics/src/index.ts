export { retrievalRecall, type RetrievalScores, type DirectionScores, type SimilarityMatrix } from './retrieval.js';
