      * ODOOCC - OCCURS DEPENDING ON COUNTERS INSIDE THE TABLE THAT
      * HOLDS THE VARIABLE TABLE: EACH OCCURRENCE HAS ITS OWN COUNT AND
      * LENGTH. C-PAIR IS A FIXED TABLE, C-GRP A VARIABLE ONE (NESTED
      * ODO); THE COUNTER C-GCNT FOLLOWS A VARIABLE TABLE. 0 COUNTS
      * ALLOWED.
       01  OCC-REC.
           05  C-ID                PIC 9(4).
           05  C-PAIR OCCURS 2 TIMES.
               10  C-PCNT          PIC 9.
               10  C-PV OCCURS 0 TO 3 TIMES DEPENDING ON C-PCNT
                                   PIC X(2).
           05  C-GCNT              PIC 9.
           05  C-GRP OCCURS 0 TO 3 TIMES DEPENDING ON C-GCNT.
               10  C-CNT           PIC S9(4) COMP.
               10  C-AMT OCCURS 0 TO 4 TIMES DEPENDING ON C-CNT
                                   PIC S9(3)V9 COMP-3.
               10  C-NOTE          PIC X(2).
           05  C-TAIL              PIC X(2).
